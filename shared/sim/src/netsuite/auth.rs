//! The client-credentials token endpoint and its JWT assertion check.

use super::*;

/// `POST /services/rest/auth/oauth2/v1/token`: the client-credentials grant
/// with a JWT assertion.
pub(super) async fn token(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let refuse = |error: &str, why: &str| {
        answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": error, "error_description": why }),
        )
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials")
        || form.get("client_assertion_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return refuse(
            "unsupported_grant_type",
            "client_credentials with a JWT assertion",
        );
    }
    let Some(jwt) = form.get("client_assertion") else {
        return refuse("invalid_request", "no client_assertion");
    };
    let origin = inner.origin.lock().expect("not poisoned").clone();
    match verify(
        &inner,
        jwt,
        &format!("{origin}/services/rest/auth/oauth2/v1/token"),
    ) {
        Ok(()) => {}
        Err(why) => return refuse("invalid_client", &why),
    }
    let token = format!("ns-{}", crate::uuid());
    let until = now_at(&inner) + chrono::Duration::hours(1);
    inner
        .data
        .lock()
        .expect("not poisoned")
        .tokens
        .insert(token.clone(), until);
    answer(
        StatusCode::OK,
        json!({ "access_token": token, "token_type": "bearer", "expires_in": 3600 }),
    )
}

/// Checks a JWT assertion: ES256 signed by the certificate's key, issued by
/// the integration, for this token endpoint, not expired, at most an hour long.
pub(super) fn verify(inner: &Inner, jwt: &str, audience: &str) -> Result<(), String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, s] = parts.as_slice() else {
        return Err("the assertion is not a compact JWS".into());
    };
    let decode = |p: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|e| format!("base64url: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("JSON: {e}"))
    };
    let header = decode(h)?;
    let claims = decode(c)?;
    if header["alg"] != "ES256" {
        return Err(format!(
            "alg {} is not one this integration accepts",
            header["alg"]
        ));
    }
    if header["kid"] != inner.cfg.certificate_id.as_str() {
        return Err("unknown certificate id (kid)".into());
    }
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|e| format!("signature: {e}"))?;
    ring::signature::UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &inner.public_key)
        .verify(format!("{h}.{c}").as_bytes(), &sig)
        .map_err(|_| "the signature does not verify with the certificate's key".to_string())?;
    if claims["iss"] != inner.cfg.client_id.as_str() {
        return Err("iss is not this integration's client id".into());
    }
    if claims["aud"] != audience {
        return Err(format!("aud must be {audience}"));
    }
    let now = now_at(inner).timestamp();
    let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
    match (iat, exp) {
        (Some(iat), Some(exp)) if iat <= now + 60 && exp > now && exp - iat <= 3600 => Ok(()),
        _ => Err("iat/exp missing, expired, or more than an hour apart".into()),
    }
}
