//! The model stage: Marathon's apps, tasks and labels read into services, endpoints and
//! problems (checked through the table they build).

mod properties;
