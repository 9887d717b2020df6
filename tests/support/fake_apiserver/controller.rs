//! Stand-ins for kube-controller-manager's deployment controller, driven explicitly by tests.
//!
//! The controller writes through the same registry rules as clients (spec through the main resource, revision
//! annotations and status through `/status`), so generations, resourceVersions and watch events are what a real
//! cluster shows. These writes are not in the request log: they are not the client's calls.

use serde_json::{Value, json};

use super::objects::{self, REVISION};
use super::resources::Resource;
use super::store::Target;
use super::{FakeApiServer, resource};

impl FakeApiServer {
    /// Seeds a settled Deployment (generation 1, revision 1) and its ReplicaSet; returns the stored Deployment.
    pub fn seed_deployment(&self, ns: &str, name: &str, image: &str, replicas: i64) -> Value {
        let deployment = self.put_object(objects::deployment(ns, name, image, replicas));
        self.put_object(objects::replica_set(&deployment, 1, replicas));
        deployment
    }

    /// The ReplicaSets owned by the Deployment, oldest revision first.
    pub fn replica_sets_of(&self, ns: &str, name: &str) -> Vec<Value> {
        let Some(deployment) = self.get_object("apps/v1", "deployments", ns, name) else {
            return Vec::new();
        };
        let uid = &deployment["metadata"]["uid"];
        let mut owned: Vec<Value> = self
            .list_objects("apps/v1", "replicasets", ns)
            .into_iter()
            .filter(|rs| {
                rs["metadata"]["ownerReferences"].as_array().is_some_and(|o| o.iter().any(|r| r["uid"] == *uid))
            })
            .collect();
        owned.sort_by_key(objects::revision_of);
        owned
    }

    /// What `kubectl set image` and then the controller do: the first container gets `image` (generation + 1), a new
    /// ReplicaSet is made at the next revision, and the status is left mid-rollout (`updatedReplicas < replicas`).
    pub fn simulate_rollout(&self, ns: &str, name: &str, image: &str) -> Value {
        self.write(deployments(), ns, name, Target::Main, |d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
        });
        self.sync_deployment(ns, name)
    }

    /// One pass of the deployment controller after a spec change: finds or creates the ReplicaSet of the current
    /// template, gives it the next revision if it is an old one (a rollback), starts scaling it up and leaves the
    /// Deployment's status mid-rollout with `observedGeneration` caught up. A paused Deployment only gets its
    /// `observedGeneration`. Returns the Deployment.
    pub fn sync_deployment(&self, ns: &str, name: &str) -> Value {
        let deployment =
            self.get_object("apps/v1", "deployments", ns, name).expect("sync_deployment: no such deployment");
        let generation = deployment["metadata"]["generation"].clone();
        if deployment["spec"]["paused"] == true {
            return self.write(deployments(), ns, name, Target::Status, |d| {
                d["status"]["observedGeneration"] = generation;
            });
        }
        let (rs_name, revision) = self.current_replica_set(&deployment);
        self.write(replica_sets(), ns, &rs_name, Target::Main, |rs| {
            if rs["spec"]["replicas"].as_i64().unwrap_or(0) == 0 {
                rs["spec"]["replicas"] = json!(1);
            }
        });
        self.write(replica_sets(), ns, &rs_name, Target::Status, |rs| {
            rs["status"] = objects::replica_set_status(rs["spec"]["replicas"].as_i64().unwrap_or(1), 0);
        });
        let replicas = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
        self.write(deployments(), ns, name, Target::Status, |d| {
            d["metadata"]["annotations"][REVISION] = json!(revision.to_string());
            d["status"] = json!({
                "observedGeneration": generation,
                "replicas": replicas + 1,
                "updatedReplicas": 1,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "unavailableReplicas": 1,
            });
        })
    }

    /// Finishes the rollout: the current template's ReplicaSet has every replica, the others none, and the status
    /// is settled at the current generation. Returns the Deployment.
    pub fn complete_rollout(&self, ns: &str, name: &str) -> Value {
        let deployment = self.sync_deployment(ns, name);
        let replicas = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
        let template = &deployment["spec"]["template"];
        for rs in self.replica_sets_of(ns, name) {
            let want = if objects::template_without_hash(&rs) == *template { replicas } else { 0 };
            let rs_name = rs["metadata"]["name"].as_str().unwrap_or("").to_owned();
            self.write(replica_sets(), ns, &rs_name, Target::Main, |rs| rs["spec"]["replicas"] = json!(want));
            self.write(replica_sets(), ns, &rs_name, Target::Status, |rs| {
                rs["status"] = objects::replica_set_status(want, want);
            });
        }
        let generation = deployment["metadata"]["generation"].as_i64().unwrap_or(1);
        self.write(deployments(), ns, name, Target::Status, |d| {
            d["status"] = objects::settled_status(generation, replicas)
        })
    }

    /// The name and revision of the ReplicaSet for the Deployment's template, creating it or moving it to the next
    /// revision as the controller does.
    fn current_replica_set(&self, deployment: &Value) -> (String, u64) {
        let ns = deployment["metadata"]["namespace"].as_str().unwrap_or("");
        let name = deployment["metadata"]["name"].as_str().unwrap_or("");
        let owned = self.replica_sets_of(ns, name);
        let newest = owned.iter().map(objects::revision_of).max().unwrap_or(0);
        let template = &deployment["spec"]["template"];
        match owned.iter().find(|rs| objects::template_without_hash(rs) == *template) {
            Some(rs) => {
                let rs_name = rs["metadata"]["name"].as_str().unwrap_or("").to_owned();
                if objects::revision_of(rs) == newest {
                    return (rs_name, newest);
                }
                self.write(replica_sets(), ns, &rs_name, Target::Main, |rs| {
                    rs["metadata"]["annotations"][REVISION] = json!((newest + 1).to_string());
                });
                (rs_name, newest + 1)
            }
            None => {
                let mut rs = objects::replica_set(deployment, newest + 1, 0);
                rs["status"] = objects::replica_set_status(0, 0);
                let rs_name = rs["metadata"]["name"].as_str().unwrap_or("").to_owned();
                self.put_object(rs);
                (rs_name, newest + 1)
            }
        }
    }

    /// A read-modify-write through the registry rules of `target`.
    fn write(
        &self,
        r: &'static Resource,
        ns: &str,
        name: &str,
        target: Target,
        edit: impl FnOnce(&mut Value),
    ) -> Value {
        let result = self.shared.store.update(r, (ns, name), target, (false, false), |current| {
            let mut next = current.clone();
            edit(&mut next);
            Ok(next)
        });
        result.unwrap_or_else(|e| panic!("controller write to {} {ns}/{name}: {}", r.plural, e.message))
    }
}

fn deployments() -> &'static Resource {
    resource("apps/v1", "deployments")
}

fn replica_sets() -> &'static Resource {
    resource("apps/v1", "replicasets")
}
