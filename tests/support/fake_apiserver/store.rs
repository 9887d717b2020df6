//! The object store: one global `resourceVersion` counter, the write rules of the real registry, and the event
//! history watches replay from.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::resources::{Generation, Resource, StatusWrites};
use super::status::ApiError;

/// Events kept for watches that resume from a resourceVersion; older ones answer 410 Gone.
const HISTORY: usize = 10_000;

/// Which endpoint a write came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Main,
    Status,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change, as watches see it.
#[derive(Clone, Debug)]
pub struct Event {
    pub rv: u64,
    pub resource: &'static Resource,
    pub kind: EventType,
    pub object: Value,
    /// The object before a modification, so a watch with a selector can turn it into ADDED or DELETED.
    pub previous: Option<Value>,
}

pub struct Store {
    inner: Mutex<Inner>,
}

type Key = (String, String, String);

struct Inner {
    objects: BTreeMap<Key, Value>,
    /// Sent to under the lock, so a watch that subscribes under it misses nothing and sees nothing twice.
    events: broadcast::Sender<Event>,
    rv: u64,
    history: VecDeque<Event>,
    /// Every event at or below this resourceVersion is gone from `history`.
    compacted: u64,
    uids: u64,
}

impl Store {
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(HISTORY);
        let inner =
            Inner { objects: BTreeMap::new(), events, rv: 1000, history: VecDeque::new(), compacted: 1000, uids: 0 };
        Self { inner: Mutex::new(inner) }
    }

    pub fn get(&self, r: &'static Resource, ns: &str, name: &str) -> Option<Value> {
        self.lock().objects.get(&key(r, ns, name)).cloned()
    }

    /// The current resourceVersion and every object of `r` (in `ns`, or all) that `keep` accepts.
    pub fn list(&self, r: &'static Resource, ns: Option<&str>, keep: impl Fn(&Value) -> bool) -> (u64, Vec<Value>) {
        let inner = self.lock();
        let items = inner.objects.iter().filter(|(k, v)| in_scope(k, r, ns) && keep(v)).map(|(_, v)| v.clone());
        (inner.rv, items.collect())
    }

    /// POST: the real create path, which sets the system fields and drops `status` behind a status subresource.
    pub fn create(&self, r: &'static Resource, ns: &str, mut obj: Value, dry_run: bool) -> Result<Value, ApiError> {
        let meta = &obj["metadata"];
        let name = match (meta["name"].as_str(), meta["generateName"].as_str()) {
            (Some(name), _) if !name.is_empty() => name.to_owned(),
            (_, Some(prefix)) => format!("{prefix}{}", self.lock().uids % 100_000 + 10_000),
            _ => {
                return Err(ApiError::invalid(
                    r,
                    "",
                    "metadata.name: Required value: name or generateName is required",
                ));
            }
        };
        check_namespace(&obj, ns)?;
        if meta.get("resourceVersion").is_some_and(|v| !v.is_null()) {
            return Err(ApiError::new(
                500,
                "InternalError",
                "resourceVersion should not be set on objects to be created",
            ));
        }
        if r.status != StatusWrites::NoSubresource {
            strip(&mut obj, "status");
        }
        let mut inner = self.lock();
        if inner.objects.contains_key(&key(r, ns, &name)) {
            return Err(ApiError::already_exists(r, &name));
        }
        inner.uids += 1;
        let uid = format!("6f1a0c2e-0000-4000-8000-{:012x}", inner.uids);
        let meta = &mut obj["metadata"];
        meta["name"] = json!(name);
        meta["namespace"] = json!(ns);
        meta["uid"] = json!(uid);
        meta["creationTimestamp"] = json!(now());
        if r.generation != Generation::None {
            meta["generation"] = json!(1);
        }
        obj["apiVersion"] = json!(r.api_version());
        obj["kind"] = json!(r.kind);
        if dry_run {
            return Ok(obj);
        }
        Ok(inner.write(r, EventType::Added, obj, None))
    }

    /// PUT and PATCH: `change` turns the stored object into the requested one; the registry rules then decide what
    /// is kept. A stale `metadata.resourceVersion` is a 409; an unchanged object is not written (no new version).
    pub fn update(
        &self,
        r: &'static Resource,
        (ns, name): (&str, &str),
        target: Target,
        (dry_run, is_put): (bool, bool),
        change: impl FnOnce(&Value) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let current = inner.objects.get(&key(r, ns, name)).cloned().ok_or_else(|| ApiError::not_found(r, name))?;
        let requested = change(&current)?;
        match requested["metadata"]["resourceVersion"].as_str() {
            Some(rv) if Some(rv) != current["metadata"]["resourceVersion"].as_str() => {
                return Err(ApiError::conflict(r, name));
            }
            None if is_put && !r.unconditional_update => {
                let msg = "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update";
                return Err(ApiError::invalid(r, name, msg));
            }
            _ => {}
        }
        if let Some(other) = requested["metadata"]["name"].as_str().filter(|n| *n != name) {
            let msg = format!("the name of the object ({other}) does not match the name on the URL ({name})");
            return Err(ApiError::bad_request(msg));
        }
        check_namespace(&requested, ns)?;
        let next = prepare_update(r, target, &current, requested);
        if next == current || dry_run {
            return Ok(next);
        }
        Ok(inner.write(r, EventType::Modified, next, Some(current)))
    }

    /// DELETE, with the optional `preconditions` of `DeleteOptions`. Returns the object at its deletion version.
    pub fn delete(&self, r: &'static Resource, ns: &str, name: &str, options: &Value) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let k = key(r, ns, name);
        let current = inner.objects.get(&k).cloned().ok_or_else(|| ApiError::not_found(r, name))?;
        for field in ["resourceVersion", "uid"] {
            if let Some(want) = options["preconditions"][field].as_str()
                && Some(want) != current["metadata"][field].as_str()
            {
                return Err(ApiError::conflict(r, name));
            }
        }
        if options["dryRun"].as_array().is_some_and(|d| !d.is_empty()) {
            return Ok(current);
        }
        inner.objects.remove(&k);
        Ok(inner.write(r, EventType::Deleted, current, None))
    }

    /// Test seeding: stores `obj` as given (status and generation included), filling missing system fields.
    pub fn seed(&self, mut obj: Value) -> Result<Value, String> {
        let (api_version, kind) = (obj["apiVersion"].as_str().unwrap_or(""), obj["kind"].as_str().unwrap_or(""));
        let r = Resource::by_kind(api_version, kind).ok_or_else(|| format!("not served: {api_version} {kind}"))?;
        let (ns, name) = (str_of(&obj["metadata"]["namespace"]), str_of(&obj["metadata"]["name"]));
        if name.is_empty() || ns.is_empty() {
            return Err(format!("metadata.name and metadata.namespace are required: {obj}"));
        }
        let mut inner = self.lock();
        let previous = inner.objects.get(&key(r, &ns, &name)).cloned();
        inner.uids += 1;
        let fallback_uid = json!(format!("5eed0000-0000-4000-8000-{:012x}", inner.uids));
        let meta = &mut obj["metadata"];
        let old_meta = previous.as_ref().map(|p| &p["metadata"]);
        for (field, fallback) in [("uid", fallback_uid), ("creationTimestamp", json!(now()))] {
            if meta[field].is_null() {
                meta[field] = old_meta.map(|m| m[field].clone()).unwrap_or(fallback);
            }
        }
        if r.generation != Generation::None && meta["generation"].is_null() {
            meta["generation"] = old_meta.map_or(json!(1), |m| m["generation"].clone());
        }
        let kind = if previous.is_some() { EventType::Modified } else { EventType::Added };
        Ok(inner.write(r, kind, obj, previous))
    }

    /// Events a watch starting at `rv` must see first, and the live feed after them. Without `rv` the watch starts
    /// with a synthetic ADDED for every current object, as the real server does for `resourceVersion` unset or "0".
    pub fn watch_from(
        &self,
        r: &'static Resource,
        ns: Option<&str>,
        rv: Option<u64>,
    ) -> Result<(Vec<Event>, broadcast::Receiver<Event>), ApiError> {
        let inner = self.lock();
        let backlog = match rv {
            None => inner
                .objects
                .iter()
                .filter(|(k, _)| in_scope(k, r, ns))
                .map(|(_, v)| Event {
                    rv: inner.rv,
                    resource: r,
                    kind: EventType::Added,
                    object: v.clone(),
                    previous: None,
                })
                .collect(),
            Some(rv) if rv < inner.compacted => return Err(ApiError::expired(rv, inner.compacted + 1)),
            Some(rv) => inner.history.iter().filter(|e| e.rv > rv && e.resource == r).cloned().collect(),
        };
        Ok((backlog, inner.events.subscribe()))
    }

    /// Forgets the event history, so any watch resuming from an earlier resourceVersion gets 410 Gone.
    pub fn compact(&self) {
        let mut inner = self.lock();
        inner.history.clear();
        inner.compacted = inner.rv;
    }

    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Inner {
    /// Bumps the global resourceVersion, stores (or, for DELETED, leaves removed) the object and records the event.
    fn write(&mut self, r: &'static Resource, kind: EventType, mut obj: Value, previous: Option<Value>) -> Value {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let (ns, name) = (str_of(&obj["metadata"]["namespace"]), str_of(&obj["metadata"]["name"]));
        if kind != EventType::Deleted {
            self.objects.insert(key(r, &ns, &name), obj.clone());
        }
        let event = Event { rv: self.rv, resource: r, kind, object: obj.clone(), previous };
        if self.history.len() == HISTORY
            && let Some(dropped) = self.history.pop_front()
        {
            self.compacted = dropped.rv;
        }
        self.history.push_back(event.clone());
        // No receiver (no open watch) is not an error.
        let _ = self.events.send(event);
        obj
    }
}

/// The registry's `PrepareForUpdate`: what each endpoint may change, system fields kept, generation bumped.
fn prepare_update(r: &Resource, target: Target, current: &Value, mut next: Value) -> Value {
    match (target, r.status) {
        (Target::Main, StatusWrites::NoSubresource) => {}
        (Target::Main, _) => copy_field(&mut next, current, "status"),
        (Target::Status, StatusWrites::StatusOnly | StatusWrites::NoSubresource) => {
            let status = next["status"].take();
            next = current.clone();
            next["status"] = status;
            if next["status"].is_null() {
                strip(&mut next, "status");
            }
        }
        (Target::Status, StatusWrites::AllButSpecAndLabels) => {
            copy_field(&mut next, current, "spec");
            copy_field(&mut next["metadata"], &current["metadata"], "labels");
        }
    }
    for field in ["apiVersion", "kind"] {
        next[field] = current[field].clone();
    }
    for field in ["name", "namespace", "uid", "creationTimestamp", "generation", "resourceVersion"] {
        copy_field(&mut next["metadata"], &current["metadata"], field);
    }
    let spec_changed = next["spec"] != current["spec"];
    let annotations_changed = next["metadata"]["annotations"] != current["metadata"]["annotations"];
    let bump = match r.generation {
        Generation::None => false,
        Generation::Spec => spec_changed,
        Generation::SpecOrAnnotations => spec_changed || annotations_changed,
    };
    if target == Target::Main && bump {
        next["metadata"]["generation"] = json!(current["metadata"]["generation"].as_i64().unwrap_or(0) + 1);
    }
    next
}

/// Makes `to[field]` what `from[field]` is, absent included.
fn copy_field(to: &mut Value, from: &Value, field: &str) {
    match from.get(field) {
        Some(v) => to[field] = v.clone(),
        None => strip(to, field),
    }
}

fn strip(v: &mut Value, field: &str) {
    if let Some(map) = v.as_object_mut() {
        map.remove(field);
    }
}

fn check_namespace(obj: &Value, ns: &str) -> Result<(), ApiError> {
    match obj["metadata"]["namespace"].as_str() {
        Some(other) if !other.is_empty() && other != ns => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(()),
    }
}

fn key(r: &Resource, ns: &str, name: &str) -> Key {
    (r.group_resource(), ns.to_owned(), name.to_owned())
}

fn in_scope(k: &Key, r: &Resource, ns: Option<&str>) -> bool {
    k.0 == r.group_resource() && ns.is_none_or(|ns| k.1 == ns)
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or("").to_owned()
}

/// Seconds precision, as `metav1.Time` is serialised.
pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
