#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `deploy/rbac.yaml` grants the guardian what it needs and nothing more:
//! the exact (apiGroup, resource, verb) triples, no wildcard, a namespaced
//! Role bound to the guardian's ServiceAccount.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde_json::Value;

const NS: &str = "blueocean-nextgen-prod";

fn documents() -> Vec<Value> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/rbac.yaml")).unwrap();
    serde_saphyr::from_multiple::<Value>(&text).unwrap()
}

fn one<T: serde::de::DeserializeOwned>(docs: &[Value], kind: &str) -> T {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "exactly one {kind}");
    serde_json::from_value(found[0].clone()).unwrap()
}

#[test]
fn the_manifest_is_a_service_account_a_role_and_its_binding_in_one_namespace() {
    let docs = documents();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ServiceAccount", "Role", "RoleBinding"], "no ClusterRole, nothing else");
    for d in &docs {
        assert_eq!(d["metadata"]["namespace"], NS, "{}", d["kind"]);
        assert_eq!(d["metadata"]["name"], "guardian", "{}", d["kind"]);
    }
}

#[test]
fn the_role_grants_exactly_the_triples_the_guardian_needs() {
    let docs = documents();
    let role: Role = one(&docs, "Role");
    let mut granted = Vec::new();
    for rule in role.rules.unwrap() {
        assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none(), "{rule:?}");
        for group in rule.api_groups.as_deref().unwrap() {
            for resource in rule.resources.as_deref().unwrap() {
                for verb in &rule.verbs {
                    granted.push((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    let unique: BTreeSet<_> = granted.iter().cloned().collect();
    assert_eq!(unique.len(), granted.len(), "a triple granted twice: {granted:?}");
    assert!(granted.iter().all(|(g, r, v)| ![g, r, v].iter().any(|s| s.contains('*'))), "a wildcard: {granted:?}");

    let mut want = BTreeSet::new();
    let mut grant = |group: &str, resources: &[&str], verbs: &[&str]| {
        for r in resources {
            for v in verbs {
                want.insert((group.to_owned(), (*r).to_owned(), (*v).to_owned()));
            }
        }
    };
    grant("apps", &["deployments", "replicasets"], &["get", "list", "watch"]);
    grant("argoproj.io", &["rollouts"], &["get", "list", "watch"]);
    grant("apps", &["deployments"], &["patch"]);
    grant("argoproj.io", &["rollouts", "rollouts/status"], &["patch"]);
    grant("coordination.k8s.io", &["leases"], &["create", "get", "update"]);
    assert_eq!(unique, want);
}

#[test]
fn every_rule_says_only_groups_resources_and_verbs() {
    let docs = documents();
    let role = docs.iter().find(|d| d["kind"] == "Role").unwrap();
    for rule in role["rules"].as_array().unwrap() {
        let keys: BTreeSet<&str> = rule.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["apiGroups", "resources", "verbs"]), "{rule}");
    }
}

#[test]
fn the_binding_gives_the_role_to_the_service_account() {
    let docs = documents();
    let account: ServiceAccount = one(&docs, "ServiceAccount");
    let role: Role = one(&docs, "Role");
    let binding: RoleBinding = one(&docs, "RoleBinding");

    assert_eq!(binding.role_ref.api_group, "rbac.authorization.k8s.io");
    assert_eq!(binding.role_ref.kind, "Role");
    assert_eq!(Some(binding.role_ref.name), role.metadata.name);
    let subjects = binding.subjects.unwrap();
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(Some(subjects[0].name.clone()), account.metadata.name);
    assert_eq!(subjects[0].namespace, account.metadata.namespace);
    assert_eq!(binding.metadata.namespace, role.metadata.namespace);
}
