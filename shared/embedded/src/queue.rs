//! A queue with SQS semantics on SQLite: visibility timeout, receive count,
//! delayed sends, and redrive to the dead-letter queue after `max_receives`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ferry_core::PortError;
use ferry_core::deps::chrono_duration;
use ferry_core::ports::{Clock, OutboundMessage, Queue, QueueDepth, QueueName, ReceivedMessage};
use rusqlite::{OptionalExtension, params};

use crate::db::{Db, from_micros, micros, sql_err, token};

/// The embedded queue. `max_receives` is the redrive policy per work queue
/// (SQS `maxReceiveCount`); DLQs have none.
pub struct SqliteQueue {
    db: Db,
    clock: Arc<dyn Clock>,
    max_receives: BTreeMap<QueueName, u32>,
}

impl SqliteQueue {
    pub fn new(db: Db, clock: Arc<dyn Clock>, max_receives: u32) -> Self {
        let mut m = BTreeMap::new();
        m.insert(QueueName::Transform, max_receives);
        m.insert(QueueName::Post, max_receives);
        SqliteQueue {
            db,
            clock,
            max_receives: m,
        }
    }
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn send(
        &self,
        queue: QueueName,
        messages: Vec<OutboundMessage>,
    ) -> Result<(), PortError> {
        let now = self.clock.now();
        self.db
            .with(|c| {
                let tx = c.transaction()?;
                {
                    let mut stmt = tx.prepare_cached(
                        "INSERT INTO queue_messages (id, queue, body, sent_at, visible_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?;
                    for m in &messages {
                        let visible = now + chrono_duration(m.delay);
                        stmt.execute(params![token(), queue.as_str(), m.body, micros(now), micros(visible)])?;
                    }
                }
                tx.commit()
            })
            .map_err(sql_err("queue", "send"))
    }

    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, PortError> {
        let now = self.clock.now();
        let hidden_until = micros(now + chrono_duration(visibility));
        let limit = self.max_receives.get(&queue).copied();
        let dlq = queue.dead_letter();
        self.db
            .with(|c| {
                let tx = c.transaction()?;
                let mut out = Vec::new();
                {
                    let mut select = tx.prepare_cached(
                        "SELECT seq, id, body, sent_at, receive_count FROM queue_messages
                         WHERE queue = ?1 AND visible_at <= ?2 ORDER BY visible_at, seq LIMIT ?3",
                    )?;
                    let rows: Vec<(i64, String, String, i64, u32)> = select
                        .query_map(params![queue.as_str(), micros(now), (max * 2 + 10) as i64], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                        })?
                        .collect::<Result<_, _>>()?;
                    for (seq, id, body, sent_at, count) in rows {
                        if out.len() >= max {
                            break;
                        }
                        // Received too often without being deleted: redrive, as SQS does on
                        // the receive that would exceed maxReceiveCount.
                        if let (Some(limit), Some(dlq)) = (limit, dlq)
                            && count >= limit
                        {
                            tx.execute(
                                "UPDATE queue_messages SET queue = ?1, visible_at = ?2, receipt = NULL WHERE seq = ?3",
                                params![dlq.as_str(), micros(now), seq],
                            )?;
                            continue;
                        }
                        let receipt = token();
                        tx.execute(
                            "UPDATE queue_messages SET receive_count = receive_count + 1, visible_at = ?1, receipt = ?2 WHERE seq = ?3",
                            params![hidden_until, receipt, seq],
                        )?;
                        out.push(ReceivedMessage {
                            id,
                            receipt,
                            body,
                            receive_count: count + 1,
                            sent_at: from_micros(sent_at),
                        });
                    }
                }
                tx.commit()?;
                Ok(out)
            })
            .map_err(sql_err("queue", "receive"))
    }

    async fn delete(&self, queue: QueueName, receipt: &str) -> Result<(), PortError> {
        self.db
            .with(|c| {
                c.execute(
                    "DELETE FROM queue_messages WHERE queue = ?1 AND receipt = ?2",
                    params![queue.as_str(), receipt],
                )
            })
            .map(|_| ())
            .map_err(sql_err("queue", "delete"))
    }

    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), PortError> {
        let until = micros(self.clock.now() + chrono_duration(visibility));
        let n = self
            .db
            .with(|c| {
                c.execute(
                    "UPDATE queue_messages SET visible_at = ?1 WHERE queue = ?2 AND receipt = ?3",
                    params![until, queue.as_str(), receipt],
                )
            })
            .map_err(sql_err("queue", "change_visibility"))?;
        if n == 0 {
            return Err(PortError::permanent(
                "queue",
                "change_visibility",
                "receipt handle is no longer valid (message deleted or received again)",
            ));
        }
        Ok(())
    }

    async fn depth(&self, queue: QueueName) -> Result<QueueDepth, PortError> {
        let now = micros(self.clock.now());
        self.db
            .with(|c| {
                let row = c
                    .query_row(
                        "SELECT
                            COALESCE(SUM(visible_at <= ?2), 0),
                            COALESCE(SUM(visible_at > ?2 AND receive_count > 0), 0),
                            COALESCE(SUM(visible_at > ?2 AND receive_count = 0), 0)
                         FROM queue_messages WHERE queue = ?1",
                        params![queue.as_str(), now],
                        |r| {
                            Ok((
                                r.get::<_, i64>(0)?,
                                r.get::<_, i64>(1)?,
                                r.get::<_, i64>(2)?,
                            ))
                        },
                    )
                    .optional()?
                    .unwrap_or((0, 0, 0));
                Ok(QueueDepth {
                    visible: row.0 as u64,
                    in_flight: row.1 as u64,
                    delayed: row.2 as u64,
                })
            })
            .map_err(sql_err("queue", "depth"))
    }
}
