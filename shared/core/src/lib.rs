//! Ferry's core: narrow ports, the mapping engine and one use-case module per
//! pipeline step (intake, transform, post, retry, reconcile). No vendor and no
//! infrastructure code lives here; adapters and connectors implement the ports.

pub mod deps;
pub mod error;
pub mod gate;
pub mod hash;
pub mod keys;
pub mod mapping;
pub mod messages;
pub mod periods;
pub mod ports;
pub mod posting;
pub mod reason;
pub mod report;
pub mod rules;
pub mod template;
pub mod usecases;

pub use deps::{Deps, Invocation, Settings, TenantContext, Tenants};
pub use error::{ConnectorError, MappingError, PortError, RetryClass};
pub use reason::ReasonCode;
