//! Signed callbacks: built for each change, signed as ConnectWise signs
//! them, and delivered (twice, out of order, or held, as the faults say).

use super::*;

/// Sends callbacks for a change to every matching subscription, with the fault knobs applied.
pub(super) async fn notify(inner: &Arc<Inner>, kind: Kind, action: &str, record: &Value) {
    if inner.faults.lock().expect("not poisoned").drop_callbacks {
        return;
    }
    let targets: Vec<String> = inner
        .data
        .lock()
        .expect("not poisoned")
        .callbacks
        .iter()
        .filter(|c| c.kind.eq_ignore_ascii_case(kind.callback_type()))
        .map(|c| c.url.clone())
        .collect();
    for url in targets {
        let payload = json!({
            "MessageId": crate::uuid(),
            "FromUrl": inner.origin.lock().expect("not poisoned").clone(),
            "CompanyId": inner.cfg.company_id,
            "MemberId": "admin",
            "Action": action,
            "Type": kind.callback_type(),
            "ID": record["id"],
            "ProductInstanceId": "sim-instance",
            "PartnerId": "ferry",
            "Entity": if action == "deleted" { Value::Null } else { Value::String(record.to_string()) },
            "Metadata": { "key_url": format!("{}/v4_6_release/system/callbackkey/index.rails?id=1", inner.origin.lock().expect("not poisoned")) },
            "CallbackObjectRecId": record["id"],
        });
        let body = payload.to_string().into_bytes();
        let (dup, reorder, forge, outbox) = {
            let mut f = inner.faults.lock().expect("not poisoned");
            let forge = f.forge_next_callbacks > 0;
            if forge {
                f.forge_next_callbacks -= 1;
            }
            (f.duplicate_callbacks, f.reorder_callbacks, forge, f.outbox)
        };
        let key = if forge {
            "forged-key"
        } else {
            inner.cfg.signing_key.as_str()
        };
        let sig = sign(key, &body);
        if outbox {
            inner
                .outbox
                .lock()
                .expect("not poisoned")
                .push(SignedCallback {
                    body,
                    signature: sig,
                });
            continue;
        }
        if reorder {
            let older = inner.held.lock().expect("not poisoned").take();
            match older {
                None => *inner.held.lock().expect("not poisoned") = Some((url, body, sig)),
                Some((u, b, s)) => {
                    // The newer callback arrives first, the older one after it.
                    deliver(inner, &url, body, sig).await;
                    deliver(inner, &u, b, s).await;
                }
            }
            continue;
        }
        deliver(inner, &url, body.clone(), sig.clone()).await;
        if dup {
            deliver(inner, &url, body, sig).await;
        }
    }
}

/// The `x-content-signature` for a body under a signing key.
pub fn sign(signing_key: &str, body: &[u8]) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::{Digest, Sha256};
    let key = Sha256::digest(signing_key.as_bytes());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

pub(super) async fn deliver(inner: &Inner, url: &str, body: Vec<u8>, sig: String) {
    for attempt in 0..3u32 {
        let r = inner
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-content-signature", &sig)
            .body(body.clone())
            .send()
            .await;
        match r {
            Ok(resp) if resp.status().is_success() || resp.status().is_client_error() => {
                inner.callbacks_sent.fetch_add(1, Ordering::Relaxed);
                return;
            }
            _ => tokio::time::sleep(Duration::from_millis(200 * (attempt as u64 + 1))).await,
        }
    }
    inner.callbacks_failed.fetch_add(1, Ordering::Relaxed);
}

pub(super) fn now_stamp(inner: &Inner) -> String {
    let custom = inner.clock.lock().expect("not poisoned").clone();
    custom
        .map(|c| c())
        .unwrap_or_else(crate::vendor_now)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}
