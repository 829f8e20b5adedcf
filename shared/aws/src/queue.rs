//! The pipeline's queues on SQS. Sends go out in batches of ten
//! (SendMessageBatch) and every entry's failure is checked; receives ask for the
//! receive count and sent time; a delete with a receipt SQS no longer knows
//! succeeds (the message was redelivered or is gone), as the port requires.
//! Redrive to the dead-letter queue is the queue's own RedrivePolicy.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use chrono::DateTime;
use ferry_core::PortError;
use ferry_core::ports::{OutboundMessage, Queue, QueueDepth, QueueName, ReceivedMessage};

use crate::table::sdk_err;

const PORT: &str = "queue";
/// SQS's longest `DelaySeconds`.
pub const MAX_DELAY: Duration = Duration::from_secs(900);
/// SQS's longest visibility timeout.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

pub struct SqsQueue {
    client: Client,
    urls: BTreeMap<QueueName, String>,
}

fn secs(d: Duration, cap: Duration) -> i32 {
    i32::try_from(d.min(cap).as_secs()).unwrap_or(i32::MAX)
}

impl SqsQueue {
    pub fn new(client: Client, urls: BTreeMap<QueueName, String>) -> Self {
        SqsQueue { client, urls }
    }

    fn url(&self, q: QueueName, op: &'static str) -> Result<&str, PortError> {
        self.urls.get(&q).map(String::as_str).ok_or_else(|| {
            PortError::permanent(PORT, op, format!("no URL configured for queue {q}"))
        })
    }
}

/// Receipt handles SQS no longer honours: the delivery is over either way.
fn stale_receipt(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("ReceiptHandleIsInvalid" | "InvalidParameterValue" | "MessageNotInflight")
    )
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(
        &self,
        queue: QueueName,
        messages: Vec<OutboundMessage>,
    ) -> Result<(), PortError> {
        let url = self.url(queue, "send")?;
        for chunk in messages.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(&m.body)
                        .delay_seconds(secs(m.delay, MAX_DELAY))
                        .build()
                        .map_err(|e| PortError::permanent(PORT, "send", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(sdk_err(PORT, "send"))?;
            if let Some(f) = out.failed.first() {
                let message = format!(
                    "{} of {} messages refused: {} {}",
                    out.failed.len(),
                    chunk.len(),
                    f.code,
                    f.message.clone().unwrap_or_default()
                );
                return Err(if f.sender_fault {
                    PortError::permanent(PORT, "send", message)
                } else {
                    PortError::transient(PORT, "send", message)
                });
            }
        }
        Ok(())
    }

    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, PortError> {
        let out = self
            .client
            .receive_message()
            .queue_url(self.url(queue, "receive")?)
            .max_number_of_messages(i32::try_from(max.clamp(1, 10)).unwrap_or(10))
            .visibility_timeout(secs(visibility, MAX_VISIBILITY))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(sdk_err(PORT, "receive"))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let attrs = m.attributes.unwrap_or_default();
                let attr = |k: MessageSystemAttributeName| {
                    attrs.get(&k).and_then(|v| v.parse::<i64>().ok())
                };
                Some(ReceivedMessage {
                    id: m.message_id?,
                    receipt: m.receipt_handle?,
                    body: m.body.unwrap_or_default(),
                    receive_count: attr(MessageSystemAttributeName::ApproximateReceiveCount)
                        .and_then(|c| u32::try_from(c).ok())
                        .unwrap_or(1),
                    sent_at: attr(MessageSystemAttributeName::SentTimestamp)
                        .and_then(DateTime::from_timestamp_millis)
                        .unwrap_or_default(),
                })
            })
            .collect())
    }

    async fn delete(&self, queue: QueueName, receipt: &str) -> Result<(), PortError> {
        match self
            .client
            .delete_message()
            .queue_url(self.url(queue, "delete")?)
            .receipt_handle(receipt)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if stale_receipt(e.code()) => Ok(()),
            Err(e) => Err(crate::table::classify(PORT, "delete", &e)),
        }
    }

    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), PortError> {
        match self
            .client
            .change_message_visibility()
            .queue_url(self.url(queue, "change_visibility")?)
            .receipt_handle(receipt)
            .visibility_timeout(secs(visibility, MAX_VISIBILITY))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if stale_receipt(e.code()) => Ok(()),
            Err(e) => Err(crate::table::classify(PORT, "change_visibility", &e)),
        }
    }

    async fn depth(&self, queue: QueueName) -> Result<QueueDepth, PortError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(self.url(queue, "depth")?)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(sdk_err(PORT, "depth"))?;
        let attrs = out.attributes.unwrap_or_default();
        let get = |k: QueueAttributeName| attrs.get(&k).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(QueueDepth {
            visible: get(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }
}
