//! NetSuite access tokens by OAuth 2.0 client credentials: Ferry signs a JWT
//! assertion (ES256, the integration's certificate id as `kid`) with the
//! private key in the secret `netsuite.private_key` (PKCS#8 PEM, P-256) and
//! exchanges it for an access token that lives an hour. Each process keeps
//! its own token (client-credentials tokens are independent of one another, so
//! no lock is needed) and fetches a new one a minute before it expires, or once
//! when NetSuite refuses the one it has.
//! Reference: NetSuite help, "OAuth 2.0 Client Credentials (M2M) Setup"
//! (`../shared/docs/VENDORS.md` [N5]).
//!
//! The signature is ring's ECDSA over the JWS signing input; the JWT's three
//! parts are written here (a JWT crate would add a second crypto stack beside
//! the ring the HTTP client already links).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ferry_core::ConnectorError;
use ferry_core::ports::{Clock, Secret};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::json;

use crate::credential::Credential;
use crate::token::TokenCache;

/// How long an assertion is valid (NetSuite accepts at most an hour).
const ASSERTION_LIFE: i64 = 300;

/// One account's client-credentials connection.
pub struct ClientCredentials {
    pub token_url: String,
    pub client_id: String,
    pub certificate_id: String,
    pub key: Credential,
    pub clock: Arc<dyn Clock>,
    http: reqwest::Client,
    tokens: TokenCache,
}

/// The DER bytes of a PEM block.
pub fn pem_der(pem: &str) -> Result<Vec<u8>, String> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .collect();
    STANDARD
        .decode(body)
        .map_err(|e| format!("not a PEM block: {e}"))
}

/// A compact JWS (`header.claims.signature`) signed ES256 with a PKCS#8 key.
pub fn sign_jwt(
    pkcs8: &[u8],
    header: &serde_json::Value,
    claims: &serde_json::Value,
) -> Result<String, String> {
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
        .map_err(|e| format!("not a P-256 PKCS#8 private key: {e}"))?;
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = key
        .sign(&rng, input.as_bytes())
        .map_err(|e| format!("signing failed: {e}"))?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())))
}

impl ClientCredentials {
    pub fn new(
        token_url: String,
        client_id: String,
        certificate_id: String,
        key: Credential,
        clock: Arc<dyn Clock>,
        timeout: Duration,
    ) -> Self {
        ClientCredentials {
            token_url,
            client_id,
            certificate_id,
            key,
            tokens: TokenCache::new(clock.clone()),
            clock,
            http: crate::http::client(timeout),
        }
    }

    /// The current token, fetching one when there is none or it is about to expire.
    pub async fn token(&self) -> Result<Secret, ConnectorError> {
        self.tokens.get(self.fetch()).await
    }

    /// NetSuite refused `used`: a new token, unless another call already got one.
    pub async fn renew(&self, used: &Secret) -> Result<Option<Secret>, ConnectorError> {
        self.tokens.renew(used, self.fetch()).await
    }

    async fn fetch(&self) -> Result<Secret, ConnectorError> {
        let pem = self.key.get().await?;
        let der = pem_der(pem.expose()).map_err(|e| ConnectorError::Config {
            message: format!("netsuite.private_key: {e}"),
        })?;
        let now = self.clock.now().timestamp();
        let assertion = sign_jwt(
            &der,
            &json!({ "alg": "ES256", "typ": "JWT", "kid": self.certificate_id }),
            &json!({ "iss": self.client_id, "scope": ["rest_webservices"],
                     "aud": self.token_url, "iat": now, "exp": now + ASSERTION_LIFE }),
        )
        .map_err(|e| ConnectorError::Config {
            message: format!("netsuite.private_key: {e}"),
        })?;
        self.tokens
            .exchange(
                &self.http,
                &self.token_url,
                &[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.as_str()),
                ],
                "NetSuite",
            )
            .await
    }
}
