//! Creates a stack's data resources from code: the table (keys, `gsi1`, TTL),
//! the four queues with their redrive policies, the event bus. The real stacks
//! come from the SAM template (issue 4); this is for the emulator: contract
//! tests, the end-to-end test, and `make invoke-*` against moto.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use ferry_core::PortError;
use ferry_core::ports::QueueName;

use crate::Resources;
use crate::table::sdk_err;

const PORT: &str = "provision";

fn attr(name: &str) -> Result<AttributeDefinition, PortError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| PortError::permanent(PORT, "table", e))
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, PortError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| PortError::permanent(PORT, "table", e))
}

/// Creates the table, queues and bus named `{prefix}-…`, and returns where they are.
pub async fn create(
    sdk: &aws_config::SdkConfig,
    prefix: &str,
    max_receives: u32,
) -> Result<Resources, PortError> {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let table = format!("{prefix}-state");
    ddb.create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .attribute_definitions(attr("gsi1pk")?)
        .attribute_definitions(attr("gsi1sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("gsi1")
                .key_schema(key("gsi1pk", KeyType::Hash)?)
                .key_schema(key("gsi1sk", KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(|e| PortError::permanent(PORT, "table", e))?,
        )
        .send()
        .await
        .map_err(sdk_err(PORT, "create_table"))?;
    ddb.update_time_to_live()
        .table_name(&table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("ttl")
                .build()
                .map_err(|e| PortError::permanent(PORT, "ttl", e))?,
        )
        .send()
        .await
        .map_err(sdk_err(PORT, "update_time_to_live"))?;

    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut queues = BTreeMap::new();
    for q in [
        QueueName::TransformDlq,
        QueueName::PostDlq,
        QueueName::Transform,
        QueueName::Post,
    ] {
        let mut req = sqs
            .create_queue()
            .queue_name(format!("{prefix}-{q}"))
            .attributes(QueueAttributeName::VisibilityTimeout, "60");
        if let Some(dlq) = q.dead_letter() {
            let url = &queues[&dlq];
            let arn = sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .map_err(sdk_err(PORT, "queue_arn"))?
                .attributes
                .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
                .ok_or_else(|| PortError::permanent(PORT, "queue_arn", "no QueueArn"))?;
            req = req.attributes(
                QueueAttributeName::RedrivePolicy,
                serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": max_receives.to_string()})
                    .to_string(),
            );
        }
        let url = req
            .send()
            .await
            .map_err(sdk_err(PORT, "create_queue"))?
            .queue_url
            .ok_or_else(|| PortError::permanent(PORT, "create_queue", "no QueueUrl"))?;
        queues.insert(q, url);
    }

    let bus = format!("{prefix}-bus");
    aws_sdk_eventbridge::Client::new(sdk)
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .map_err(sdk_err(PORT, "create_event_bus"))?;

    Ok(Resources {
        table,
        queues,
        event_bus: bus,
        secret_prefix: format!("{prefix}/"),
        secret_ttl: Duration::from_secs(300),
    })
}

/// Stores a tenant's secret (`{secret_prefix}{tenant}`) as a JSON object.
pub async fn put_secret(
    sdk: &aws_config::SdkConfig,
    r: &Resources,
    tenant: &ferry_canon::TenantId,
    values: &BTreeMap<String, String>,
) -> Result<(), PortError> {
    let sm = aws_sdk_secretsmanager::Client::new(sdk);
    let id = format!("{}{tenant}", r.secret_prefix);
    let body =
        serde_json::to_string(values).map_err(|e| PortError::permanent(PORT, "secret", e))?;
    match sm
        .create_secret()
        .name(&id)
        .secret_string(&body)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if aws_sdk_secretsmanager::error::ProvideErrorMetadata::code(&e)
                == Some("ResourceExistsException") =>
        {
            sm.put_secret_value()
                .secret_id(&id)
                .secret_string(&body)
                .send()
                .await
                .map(|_| ())
                .map_err(sdk_err(PORT, "put_secret_value"))
        }
        Err(e) => Err(crate::table::classify(PORT, "create_secret", &e)),
    }
}
