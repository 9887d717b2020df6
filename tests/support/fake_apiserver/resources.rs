//! The resources the fake serves and the per-resource rules the real API server applies to them.

/// When `metadata.generation` moves, as each real registry strategy decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// The resource has no generation (Leases).
    None,
    /// Bumped when `spec` changes (ReplicaSets, custom resources).
    Spec,
    /// Bumped when `spec` or `metadata.annotations` change: the Deployment strategy does this because
    /// annotations are copied to ReplicaSets.
    SpecOrAnnotations,
}

/// What a write to the `status` subresource may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusWrites {
    /// No status subresource: `.../status` is 404 and the main resource owns `status`.
    NoSubresource,
    /// Built-in workloads: everything but `spec` and `metadata.labels` (the deployment controller writes the
    /// revision annotation through `UpdateStatus`).
    AllButSpecAndLabels,
    /// Custom resources: only `status`.
    StatusOnly,
}

/// One served resource.
#[derive(Debug, PartialEq, Eq)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    pub generation: Generation,
    pub status: StatusWrites,
    /// Custom resources refuse a PUT without `metadata.resourceVersion`; built-ins allow it.
    pub unconditional_update: bool,
    /// Built-ins answer a DELETE with a `Status`; custom resources with the deleted object.
    pub delete_returns_object: bool,
}

pub static RESOURCES: [Resource; 4] = [
    Resource {
        group: "apps",
        version: "v1",
        plural: "deployments",
        kind: "Deployment",
        generation: Generation::SpecOrAnnotations,
        status: StatusWrites::AllButSpecAndLabels,
        unconditional_update: true,
        delete_returns_object: false,
    },
    Resource {
        group: "apps",
        version: "v1",
        plural: "replicasets",
        kind: "ReplicaSet",
        generation: Generation::Spec,
        status: StatusWrites::AllButSpecAndLabels,
        unconditional_update: true,
        delete_returns_object: false,
    },
    Resource {
        group: "argoproj.io",
        version: "v1alpha1",
        plural: "rollouts",
        kind: "Rollout",
        generation: Generation::Spec,
        status: StatusWrites::StatusOnly,
        unconditional_update: false,
        delete_returns_object: true,
    },
    Resource {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        kind: "Lease",
        generation: Generation::None,
        status: StatusWrites::NoSubresource,
        unconditional_update: true,
        delete_returns_object: false,
    },
];

impl Resource {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_owned() } else { format!("{}/{}", self.group, self.version) }
    }

    /// `deployments.apps`, as error messages name it.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() { self.plural.to_owned() } else { format!("{}.{}", self.plural, self.group) }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    pub fn by_path(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
        RESOURCES.iter().find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// Finds the resource of an object from its `apiVersion` and `kind`.
    pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
        RESOURCES.iter().find(|r| r.api_version() == api_version && r.kind == kind)
    }

    /// Finds a resource from `apps/v1` and `deployments`.
    pub fn by_group_version(group_version: &str, plural: &str) -> Option<&'static Resource> {
        RESOURCES.iter().find(|r| r.api_version() == group_version && r.plural == plural)
    }
}
