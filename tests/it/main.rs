//! The integration tests, one binary (`cargo test --test it`): one module per
//! area, the shared helpers in [`common`]. Tests that need a real Kubernetes
//! cluster are `#[ignore]`d; `make test-cluster` runs them.

mod common;

mod bad_input;
mod ca_rotation;
mod checks_openbao;
mod ci_examples;
mod ci_plan_file;
mod cli_output;
mod cli_usage;
mod cluster_deliver;
mod cluster_prune;
mod cluster_real;
mod cluster_real_pipeline;
mod cluster_requests;
mod crd_agreement;
mod deliver_key;
mod e2e_examples;
mod e2e_flows;
mod e2e_homelab;
mod e2e_idempotency;
mod e2e_prune_vault;
mod e2e_secrets;
mod e2e_untrusted_repo;
mod e2e_validate_live;
mod lease_real;
mod lease_requests;
mod lease_run;
mod load_examples;
mod load_identity;
mod load_repo;
mod load_validate;
mod make_test_summary;
mod no_vault;
mod plan;
mod policy_deploy;
mod policy_homelab;
mod privileged;
mod prune_cluster_side;
mod reviewer;
mod run_loop;
mod schemas;
mod vault_apply;
mod vault_connect;
mod vault_lock;
mod vault_observe;
mod vault_resume;
mod vault_retry;
mod vault_tls;
mod verify;
mod watch_loop;
