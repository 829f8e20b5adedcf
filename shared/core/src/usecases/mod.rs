//! One module per pipeline step. Each exposes a `handle…` entry point that the
//! Lambda functions and the local host call with the same arguments.

pub mod coverage;
pub mod exceptions;
pub mod health;
pub mod intake;
pub mod outcome;
pub mod post;
pub mod reconcile;
pub mod related;
pub mod retry;
pub mod transform;
pub mod trends;
