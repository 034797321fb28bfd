//! Front door: Kubernetes. The custom resources (`crd`) and the controller that reconciles
//! them through the engine.

pub mod controller;
pub mod crd;
pub mod status;
