//! Custom resource types of securepipe (`securepipe.io/v1alpha1`).
