use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::PortError;

/// The pipeline's queues. Each has a dead-letter queue configured by the adapter
/// (SQS redrive policy, or the embedded queue's `max_receives`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueName {
    /// Change notices from intake, consumed by transform.
    Transform,
    /// Post commands from transform, consumed by post.
    Post,
    /// Dead letters of `Transform`, consumed by retry.
    TransformDlq,
    /// Dead letters of `Post`, consumed by retry.
    PostDlq,
}

impl QueueName {
    pub const ALL: [QueueName; 4] = [
        QueueName::Transform,
        QueueName::Post,
        QueueName::TransformDlq,
        QueueName::PostDlq,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            QueueName::Transform => "transform",
            QueueName::Post => "post",
            QueueName::TransformDlq => "transform-dlq",
            QueueName::PostDlq => "post-dlq",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.as_str() == s)
    }

    /// The dead-letter queue of a work queue; `None` for a DLQ itself.
    pub fn dead_letter(&self) -> Option<QueueName> {
        match self {
            QueueName::Transform => Some(QueueName::TransformDlq),
            QueueName::Post => Some(QueueName::PostDlq),
            _ => None,
        }
    }

    /// The work queue a DLQ drains back into on replay.
    pub fn source_of_dlq(&self) -> Option<QueueName> {
        match self {
            QueueName::TransformDlq => Some(QueueName::Transform),
            QueueName::PostDlq => Some(QueueName::Post),
            _ => None,
        }
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message to send; `delay` postpones its first delivery (SQS `DelaySeconds`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    pub body: String,
    pub delay: Duration,
}

impl OutboundMessage {
    pub fn now(body: String) -> Self {
        OutboundMessage {
            body,
            delay: Duration::ZERO,
        }
    }
}

/// A received message. `receipt` identifies this delivery (it changes on every
/// receive); `receive_count` counts deliveries including this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub id: String,
    pub receipt: String,
    pub body: String,
    pub receive_count: u32,
    pub sent_at: DateTime<Utc>,
}

/// Approximate depth of a queue, as SQS reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

impl QueueDepth {
    pub fn total(&self) -> u64 {
        self.visible + self.in_flight + self.delayed
    }
}

/// A queue with SQS semantics: at-least-once delivery, a visibility timeout per
/// receive, a receive count, delayed sends, and redrive to the DLQ once a message
/// has been received `max_receives` times without being deleted.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends messages (the adapter batches as the service allows).
    async fn send(&self, queue: QueueName, messages: Vec<OutboundMessage>)
    -> Result<(), PortError>;

    /// Receives up to `max` visible messages and hides them for `visibility`.
    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, PortError>;

    /// Deletes a received message. With a stale receipt (the message was received
    /// again since) the call succeeds but the message stays, as in SQS.
    async fn delete(&self, queue: QueueName, receipt: &str) -> Result<(), PortError>;

    /// Changes how long a received message stays hidden (used for backoff and `Retry-After`).
    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), PortError>;

    /// Approximate depth.
    async fn depth(&self, queue: QueueName) -> Result<QueueDepth, PortError>;
}
