//! One module per custom resource kind.
