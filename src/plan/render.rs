//! Rendering a plan for people (a per-field diff) and for machines (JSON).
