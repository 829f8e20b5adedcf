//! Domain events on the stack's EventBridge bus. Each [`DomainEvent`] becomes one
//! entry: `Source = "ferry"`, `DetailType` = the event name
//! (`ferry.record.posted`, …), and a `Detail` envelope
//! `{"schema_version", "tenant", "at", "detail"}` described in `docs/events.md`.
//! Entries go out ten per PutEvents call; a partly refused batch is an error
//! (the caller retries; consumers dedupe on `detail` content, as EventBridge is
//! at-least-once anyway).

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use ferry_core::PortError;
use ferry_core::ports::{DomainEvent, EventPublisher};

use crate::table::sdk_err;

const PORT: &str = "events";
pub const SOURCE: &str = "ferry";

pub struct EventBridgePublisher {
    client: Client,
    bus: String,
}

impl EventBridgePublisher {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        EventBridgePublisher {
            client,
            bus: bus.into(),
        }
    }
}

/// The `Detail` envelope of one event.
pub fn envelope(e: &DomainEvent) -> serde_json::Value {
    serde_json::json!({
        "schema_version": e.schema_version,
        "tenant": e.tenant,
        "at": e.at,
        "detail": e.detail,
    })
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, events: Vec<DomainEvent>) -> Result<(), PortError> {
        for chunk in events.chunks(10) {
            let entries = chunk
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(SOURCE)
                        .detail_type(&e.detail_type)
                        .detail(envelope(e).to_string())
                        .time(aws_sdk_eventbridge::primitives::DateTime::from_millis(
                            e.at.timestamp_millis(),
                        ))
                        .build()
                })
                .collect();
            let out = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(sdk_err(PORT, "publish"))?;
            if out.failed_entry_count > 0 {
                let first = out
                    .entries
                    .unwrap_or_default()
                    .into_iter()
                    .find(|e| e.error_code.is_some());
                return Err(PortError::transient(
                    PORT,
                    "publish",
                    format!(
                        "{} of {} events refused: {}",
                        out.failed_entry_count,
                        chunk.len(),
                        first
                            .map(|e| format!(
                                "{} {}",
                                e.error_code.unwrap_or_default(),
                                e.error_message.unwrap_or_default()
                            ))
                            .unwrap_or_default()
                    ),
                ));
            }
        }
        Ok(())
    }
}
