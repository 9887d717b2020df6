//! URL routing: the paths, verbs and content types of the real API server, plus just enough discovery.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::faults::{self, Faults};
use super::patch::{self, PatchError, PatchKind};
use super::resources::{RESOURCES, Resource, StatusWrites};
use super::selectors::Selector;
use super::status::{ApiError, deleted, json_response};
use super::store::{Store, Target};
use super::watch::{self, WatchRequest, WatchSignals};

/// Everything the handlers share.
pub struct Shared {
    pub store: Store,
    pub signals: WatchSignals,
    pub faults: Arc<Faults>,
}

type Query = HashMap<String, String>;

/// One request, once the path is understood.
struct Call<'a> {
    resource: &'static Resource,
    namespace: Option<&'a str>,
    name: Option<&'a str>,
    status: bool,
}

pub fn router(shared: Arc<Shared>) -> Router {
    let faults = shared.faults.clone();
    Router::new()
        .fallback(dispatch)
        .with_state(shared)
        .layer(axum::middleware::from_fn_with_state(faults, faults::record_and_inject))
}

async fn dispatch(State(s): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let query: Query = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    if let Some(doc) = discovery(&segments) {
        return json_response(StatusCode::OK, &doc);
    }
    let Some(call) = parse_path(&segments) else {
        return ApiError::new(404, "NotFound", "the server could not find the requested resource").into_response();
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let result = match (call.name, method.as_str()) {
        (None, "GET") => return collection_get(&s, &call, &query),
        (None, "POST") if call.namespace.is_some() => create(&s.store, &call, &query, content_type, &body),
        (Some(name), "GET") => get(&s.store, &call, name),
        (Some(name), "PUT") => replace(&s.store, &call, name, &query, content_type, &body),
        (Some(name), "PATCH") => apply_patch(&s.store, &call, name, &query, content_type, &body),
        (Some(name), "DELETE") if !call.status => delete(&s.store, &call, name, &query, &body),
        _ => Err(ApiError::new(405, "MethodNotAllowed", format!("the server does not allow this method: {method}"))),
    };
    match result {
        Ok((code, value)) => json_response(code, &value),
        Err(e) => e.into_response(),
    }
}

/// `/apis/{g}/{v}/{plural}`, `/apis/{g}/{v}/namespaces/{ns}/{plural}[/{name}[/status]]`.
fn parse_path<'a>(segments: &[&'a str]) -> Option<Call<'a>> {
    let call = |g: &str, v: &str, plural: &str, namespace: Option<&'a str>, name: Option<&'a str>, status: bool| {
        let resource = Resource::by_path(g, v, plural)?;
        let status_ok = !status || resource.status != StatusWrites::NoSubresource;
        status_ok.then_some(Call { resource, namespace, name, status })
    };
    match *segments {
        ["apis", g, v, plural] => call(g, v, plural, None, None, false),
        ["apis", g, v, "namespaces", ns, plural] => call(g, v, plural, Some(ns), None, false),
        ["apis", g, v, "namespaces", ns, plural, name] => call(g, v, plural, Some(ns), Some(name), false),
        ["apis", g, v, "namespaces", ns, plural, name, "status"] => call(g, v, plural, Some(ns), Some(name), true),
        _ => None,
    }
}

type Answer = Result<(StatusCode, Value), ApiError>;

fn collection_get(s: &Shared, call: &Call<'_>, query: &Query) -> Response {
    let selectors = || -> Result<(Selector, Selector), ApiError> {
        let labels = Selector::labels(query.get("labelSelector").map_or("", String::as_str));
        let fields = Selector::fields(query.get("fieldSelector").map_or("", String::as_str));
        Ok((labels.map_err(ApiError::bad_request)?, fields.map_err(ApiError::bad_request)?))
    };
    let (labels, fields) = match selectors() {
        Ok(pair) => pair,
        Err(e) => return e.into_response(),
    };
    if matches!(query.get("watch").map(String::as_str), Some("true" | "1")) {
        let resource_version = match watch::parse_resource_version(query.get("resourceVersion").map(String::as_str)) {
            Ok(rv) => rv,
            Err(e) => return e.into_response(),
        };
        let timeout = query.get("timeoutSeconds").and_then(|t| t.parse().ok()).map(std::time::Duration::from_secs);
        let bookmarks = query.get("allowWatchBookmarks").is_some_and(|b| b == "true");
        let namespace = call.namespace.map(str::to_owned);
        let request =
            WatchRequest { resource: call.resource, namespace, resource_version, labels, fields, bookmarks, timeout };
        return watch::serve(&s.store, request, &s.signals);
    }
    let r = call.resource;
    let keep = |o: &Value| labels.matches_labels(o) && fields.matches_fields(o);
    let (rv, items) = s.store.list(r, call.namespace, keep);
    let list = json!({
        "kind": r.list_kind(),
        "apiVersion": r.api_version(),
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items,
    });
    json_response(StatusCode::OK, &list)
}

fn get(store: &Store, call: &Call<'_>, name: &str) -> Answer {
    let ns = call.namespace.unwrap_or("");
    let obj = store.get(call.resource, ns, name).ok_or_else(|| ApiError::not_found(call.resource, name))?;
    Ok((StatusCode::OK, obj))
}

fn create(store: &Store, call: &Call<'_>, query: &Query, content_type: &str, body: &[u8]) -> Answer {
    let obj = json_body(content_type, body)?;
    let created = store.create(call.resource, call.namespace.unwrap_or(""), obj, dry_run(query))?;
    Ok((StatusCode::CREATED, created))
}

fn replace(store: &Store, call: &Call<'_>, name: &str, query: &Query, content_type: &str, body: &[u8]) -> Answer {
    let obj = json_body(content_type, body)?;
    let target = if call.status { Target::Status } else { Target::Main };
    let ns = call.namespace.unwrap_or("");
    let updated = store.update(call.resource, (ns, name), target, (dry_run(query), true), |_| Ok(obj))?;
    Ok((StatusCode::OK, updated))
}

fn apply_patch(store: &Store, call: &Call<'_>, name: &str, query: &Query, content_type: &str, body: &[u8]) -> Answer {
    let kind = PatchKind::from_content_type(content_type).ok_or_else(|| unsupported_patch(content_type))?;
    let target = if call.status { Target::Status } else { Target::Main };
    let ns = call.namespace.unwrap_or("");
    let r = call.resource;
    let patched = store.update(r, (ns, name), target, (dry_run(query), false), |current| {
        patch::apply(kind, current, body).map_err(|e| match e {
            PatchError::Malformed(m) => ApiError::bad_request(m),
            PatchError::NotApplicable(m) => ApiError::new(422, "Invalid", m),
        })
    })?;
    Ok((StatusCode::OK, patched))
}

fn delete(store: &Store, call: &Call<'_>, name: &str, query: &Query, body: &[u8]) -> Answer {
    let mut options: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))?
    };
    if dry_run(query) {
        options["dryRun"] = json!(["All"]);
    }
    let r = call.resource;
    let gone = store.delete(r, call.namespace.unwrap_or(""), name, &options)?;
    let answer = if r.delete_returns_object { gone } else { deleted(r, name, &gone["metadata"]["uid"]) };
    Ok((StatusCode::OK, answer))
}

fn dry_run(query: &Query) -> bool {
    query.get("dryRun").is_some_and(|d| d == "All")
}

fn json_body(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.is_empty() && media != "application/json" {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the fake apiserver only reads application/json bodies, not {media}"),
        ));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))
}

fn unsupported_patch(content_type: &str) -> ApiError {
    let message = if content_type.starts_with("application/apply-patch+yaml") {
        "server-side apply (application/apply-patch+yaml) is not implemented by the fake apiserver; \
         use a merge or JSON patch"
            .to_owned()
    } else {
        format!(
            "the body of the request was in an unknown format ({content_type}) - accepted media types include: \
             application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json"
        )
    };
    ApiError::new(415, "UnsupportedMediaType", message)
}

/// `/api`, `/apis`, `/apis/{g}`, `/apis/{g}/{v}` and `/version`, for clients that discover before calling.
fn discovery(segments: &[&str]) -> Option<Value> {
    let groups = || {
        let mut names: Vec<&str> = RESOURCES.iter().map(|r| r.group).collect();
        names.dedup();
        names
    };
    let group = |g: &str| {
        let version = RESOURCES.iter().find(|r| r.group == g)?;
        let gv = json!({"groupVersion": version.api_version(), "version": version.version});
        Some(json!({"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": [gv], "preferredVersion": gv}))
    };
    match *segments {
        ["version"] => {
            Some(json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake", "platform": "linux/amd64"}))
        }
        ["api"] => Some(json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})),
        ["api", "v1"] => {
            Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": []}))
        }
        ["apis"] => {
            let groups: Vec<Value> = groups().into_iter().filter_map(group).collect();
            Some(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        }
        ["apis", g] => group(g),
        ["apis", g, v] => resource_list(g, v),
        _ => None,
    }
}

fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == group && r.version == version) {
        let verbs = ["create", "delete", "get", "list", "patch", "update", "watch"];
        resources.push(json!({"name": r.plural, "singularName": r.kind.to_lowercase(), "namespaced": true,
            "kind": r.kind, "verbs": verbs}));
        if r.status != StatusWrites::NoSubresource {
            resources.push(json!({"name": format!("{}/status", r.plural), "singularName": "", "namespaced": true,
                "kind": r.kind, "verbs": ["get", "patch", "update"]}));
        }
    }
    let gv = if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
    (!resources.is_empty())
        .then(|| json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
}
