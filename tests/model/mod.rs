//! The model stage, with Marathon-LB's label semantics: Marathon's apps, tasks and labels read
//! into services, endpoints and problems, checked end to end through the table they build.

mod bad_input;
mod deployments;
mod groups;
mod labels;
mod networking;
mod properties;
mod tasks_and_health;
