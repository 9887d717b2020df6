//! Generators of bad input for `fuzz_inputs`: YAML-ish text and mutations
//! of a valid config, odd durations, sizes, URLs, regexes and JSON
//! Pointers, arbitrary JSON documents, and API bodies and query strings
//! shaped like the real ones but wrong in every way proptest can find.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use serde_json::Value;

/// The same cases on every run, so CI is repeatable; `PROPTEST_RNG_SEED=n` explores others.
pub const SEED: u64 = 0x6a4d_2026;

/// A runner for `cases` cases from the fixed seed, persisting nothing (no
/// regression files in the tree: a failing case is printed, shrunk).
/// `PROPTEST_CASES` does not change the count.
pub fn runner(cases: u32) -> TestRunner {
    let defaults = Config::default();
    let rng_seed = match defaults.rng_seed {
        RngSeed::Random => RngSeed::Fixed(SEED),
        chosen => chosen,
    };
    TestRunner::new(Config { cases, failure_persistence: None, rng_seed, ..defaults })
}

/// Fragments that mean something to YAML or to Guardian.
const YAML_PIECES: &[&str] = &[
    "environment: ",
    "prod",
    "checks:",
    "\n",
    "\n  ",
    "  ",
    "- ",
    "{",
    "}",
    "[",
    "]",
    ", ",
    ": ",
    "name: a",
    "url: ",
    "'",
    "\"",
    "&x ",
    "*x",
    "!!str ",
    "!!binary ",
    "---\n",
    "...\n",
    "# c",
    "|\n",
    ">-\n",
    "? ",
    "%YAML 1.2\n",
    "\t",
    "budget: ",
    "1s",
    "http://127.0.0.1:1/",
    ".nan",
    ".inf",
    "~",
    "null",
    "<<: *x",
    "expect: ",
    "json: ",
    "path: ",
    "/a",
    "equals: ",
    "min: ",
    "matches: ",
    "slos: ",
    "guard: ",
    "${SET}",
    "${UNSET}",
    "$$",
    "\u{feff}",
    "\r",
    "\\",
    "0x1F",
    "1e400",
    "-",
    "9999999999999999999999",
];

/// Pieces that mean something to YAML or to Guardian, for text that gets
/// further into the parser than random characters do.
pub fn yamlish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop::sample::select(YAML_PIECES.to_vec()).prop_map(str::to_string),
        "[a-z_]{1,8}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}

/// One edit of a config's text.
#[derive(Debug, Clone)]
pub enum Mutation {
    Delete(Index),
    Duplicate(Index),
    Swap(Index, Index),
    Indent(Index, i8),
    /// Replace the value of one `key: value` on a line with raw text.
    Value(Index, Index, String),
    Truncate(Index),
}

/// Line edits, and values replaced by text of any kind.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    let raw = prop_oneof![any::<String>(), yamlish(), any_value().prop_map(|(_, v)| yaml_quote(&v))];
    prop_oneof![
        any::<Index>().prop_map(Mutation::Delete),
        any::<Index>().prop_map(Mutation::Duplicate),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        (any::<Index>(), -4i8..4).prop_map(|(a, n)| Mutation::Indent(a, n)),
        (any::<Index>(), any::<Index>(), raw).prop_map(|(a, b, v)| Mutation::Value(a, b, v)),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// `key: value` pairs on a line, block or flow style: (start, end) of each value.
pub fn values_on(line: &str) -> Vec<(String, std::ops::Range<usize>)> {
    let re = regex::Regex::new(r#"([a-z_]+): ("[^"]*"|[^,}\n]*)"#).unwrap();
    re.captures_iter(line)
        .filter_map(|c| Some((c.get(1)?.as_str().to_string(), c.get(2)?.range())))
        .filter(|(_, r)| !r.is_empty())
        .collect()
}

/// `text` with `m` applied; indexes wrap around the lines there are.
pub fn mutate(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.is_empty() {
        return text.to_string();
    }
    match m {
        Mutation::Delete(i) => {
            lines.remove(i.index(lines.len()));
        }
        Mutation::Duplicate(i) => {
            let i = i.index(lines.len());
            lines.insert(i, lines[i].clone());
        }
        Mutation::Swap(a, b) => {
            let (a, b) = (a.index(lines.len()), b.index(lines.len()));
            lines.swap(a, b);
        }
        Mutation::Indent(i, n) => {
            let i = i.index(lines.len());
            let line = &lines[i];
            lines[i] = match *n {
                n if n >= 0 => format!("{}{line}", " ".repeat(n as usize)),
                n => line.chars().skip(n.unsigned_abs() as usize).collect(),
            };
        }
        Mutation::Value(i, k, v) => {
            let i = i.index(lines.len());
            let pairs = values_on(&lines[i]);
            if !pairs.is_empty() {
                let (_, r) = &pairs[k.index(pairs.len())];
                lines[i].replace_range(r.clone(), v);
            }
        }
        Mutation::Truncate(at) => {
            let joined = lines.join("\n");
            let mut cut = at.index(joined.len() + 1);
            while !joined.is_char_boundary(cut) {
                cut -= 1;
            }
            return joined[..cut].to_string();
        }
    }
    lines.join("\n") + "\n"
}

/// The kinds of config value with a syntax of their own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Duration,
    Size,
    Url,
    Regex,
    Pointer,
}

/// The kind of value a config key holds, for the keys this fuzz mutates.
pub fn kind_of(key: &str) -> Option<Kind> {
    Some(match key {
        "interval" | "budget" | "timeout" | "window" | "stale_after" | "require_backup_within" | "confirm_interval" => {
            Kind::Duration
        }
        "max_body" => Kind::Size,
        "url" => Kind::Url,
        "matches" => Kind::Regex,
        "path" => Kind::Pointer,
        _ => return None,
    })
}

/// A password-bearing URL's secret part, so a leak is easy to spot.
pub const URL_SECRET: &str = "Pw9zSecret";

/// Values of `kind`, mostly near misses of a valid one.
pub fn value_of(kind: Kind) -> BoxedStrategy<String> {
    let any_text = any::<String>().boxed();
    match kind {
        Kind::Duration => prop_oneof![
            "-?[0-9]{0,22}(\\.[0-9]{0,3})?(ns|us|ms|s|m|h|d|w|y|months|min|sec| s|S|)",
            "([0-9]{1,4}(h|m|s|ms) ?){1,4}",
            any_text,
        ]
        .boxed(),
        Kind::Size => prop_oneof!["-?[0-9]{0,22} ?(B|KiB|MiB|GiB|TiB|KB|kB|MB|GB|mb|k|)", any_text].boxed(),
        Kind::Url => {
            let scheme = prop::sample::select(vec!["http", "https", "HTTP", "ftp", "redis", "file", "", "h ttp"]);
            let sep = prop::sample::select(vec!["://", ":/", ":", ":\\\\", ":///", "//", ":\t//", ""]);
            let user = prop::sample::select(vec!["", "user@", "user:", "@", ":@"])
                .prop_map(|u| if u == "user:" { format!("user:{URL_SECRET}@") } else { u.to_string() });
            let host = prop::sample::select(vec![
                "127.0.0.1",
                "[::1]",
                "",
                "a b",
                "%zz",
                "xn--",
                "999.1.1.1",
                "[::1",
                "nextgen",
                "例え.jp",
            ]);
            let port = prop::sample::select(vec!["", ":", ":7001", ":99999", ":-1", ":abc"]);
            let rest = "(/[a-z%?#@:]{0,6}){0,3}";
            prop_oneof![
                4 => (scheme, sep, user, host, port, rest).prop_map(|(s, p, u, h, o, r)| format!("{s}{p}{u}{h}{o}{r}")),
                1 => any_text,
            ]
            .boxed()
        }
        Kind::Regex => {
            prop_oneof!["[\\^$.*+?()\\[\\]{}|\\\\a-z0-9,]{0,24}", "(a{1,3}){0,3}\\{[0-9]{1,7}\\}", any_text].boxed()
        }
        Kind::Pointer => prop_oneof!["(/([a-z0-9]|~[0-9]?|/|-){0,4}){0,4}~?", "[a-z/~]{0,10}", any_text].boxed(),
    }
}

/// A value of any kind.
pub fn any_value() -> impl Strategy<Value = (Kind, String)> {
    prop::sample::select(vec![Kind::Duration, Kind::Size, Kind::Url, Kind::Regex, Kind::Pointer])
        .prop_flat_map(|k| (Just(k), value_of(k)))
}

/// A YAML double-quoted scalar holding exactly `v`.
pub fn yaml_quote(v: &str) -> String {
    let mut out = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Object keys: mostly short (so pointers hit them), some with `~` and `/`, some anything.
pub fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![4 => "[a-c]{0,2}", 1 => "[~/0-9a]{1,3}", 1 => any::<String>()]
}

/// Any JSON document, four levels deep at most.
pub fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..300).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Fractions with few digits: serde_json reads these back exactly (see
        // `a_number_in_the_body_equals_the_same_number_in_the_config` for those it does not).
        (-1_000_000_000_000i64..1_000_000_000_000).prop_map(|n| Value::from(n as f64 / 1000.0)),
        prop_oneof!["[a-z0-9.]{0,4}", any::<String>()].prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(json_key(), inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every pointer that finds something in `v`, root first.
pub fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    let escape = |k: &str| k.replace('~', "~0").replace('/', "~1");
    match v {
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| pointers(x, format!("{at}/{i}"), out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| pointers(x, format!("{at}/{}", escape(k)), out)),
        _ => {}
    }
}

/// Pointers of every shape: well-formed, with bad escapes, leading zeros, `-`, not starting with `/`.
pub fn any_pointer() -> impl Strategy<Value = String> {
    prop_oneof![
        "(/([a-c0-9]|~[0-9]?|-|/){0,3}){0,4}",
        Just(String::new()),
        "/0[0-9]",
        "/-",
        any::<String>(),
        "[a-z]{1,3}(/[a-z]){0,2}",
    ]
}

/// The API token of the guardian under fuzz.
pub const TOKEN: &str = "fuzz-token-5d1e";

/// Its one guarded target.
pub const TARGET: &str = "blueocean-nextgen-prod/Deployment/nextgen-dashboard";

/// Bytes as they may sit in a URL: letters and digits as they are, the rest %XX.
pub fn percent(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(b) {
                (*b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `completed_at` values: well-formed, out of range, in the future, not a time at all.
pub fn timestamps() -> impl Strategy<Value = Value> {
    let written = prop::sample::select(vec![
        "2026-01-01T00:00:00Z",
        "2025-06-01T12:00:00+02:00",
        "yesterday",
        "",
        "9999-12-31T23:59:59Z",
        "-009999-01-01T00:00:00Z",
        "2026-13-45T99:99:99Z",
        "2026-01-01T00:00:00+25:00",
        "1970-01-01T00:00:00Z",
    ]);
    prop_oneof![3 => written.prop_map(Value::from), 1 => any_json()]
}

/// `POST /api/v1/backups` bodies, each field now right, now wrong, now missing.
pub fn backup_body() -> impl Strategy<Value = Value> {
    let env = prop::sample::select(vec!["prod", "prod", "dev", "staging-shared", "PROD", ""]);
    let env = prop_oneof![3 => env.prop_map(Value::from), 1 => any_json()];
    let id = prop_oneof![
        3 => "[a-z0-9-]{1,12}".prop_map(Value::from),
        1 => any_json(),
        1 => ".{190,210}".prop_map(Value::from),
    ];
    let ok = prop_oneof![3 => any::<bool>().prop_map(Value::from), 1 => any_json()];
    let some = |s: BoxedStrategy<Value>| prop::option::weighted(0.9, s);
    (some(env.boxed()), some(id.boxed()), some(timestamps().boxed()), some(ok.boxed()), extra())
        .prop_map(|(e, i, c, o, extra)| object([("environment", e), ("id", i), ("completed_at", c), ("ok", o)], extra))
}

/// `POST /api/v1/migrations` bodies, the same way.
pub fn migration_body() -> impl Strategy<Value = Value> {
    let target = prop::sample::select(vec![
        TARGET,
        TARGET,
        "blueocean-nextgen-prod/deployment/nextgen-dashboard",
        "a/b",
        "",
        "a/b/c/d",
        " / / ",
        "blueocean-nextgen-prod/Rollout/nextgen-dashboard",
    ]);
    let target = prop_oneof![3 => target.prop_map(Value::from), 1 => any_json()];
    let description = prop_oneof![
        3 => "[a-z][a-z ]{0,20}".prop_map(Value::from),
        1 => any::<String>().prop_map(Value::from),
        1 => "x{995,1005}".prop_map(Value::from),
        1 => any_json(),
    ];
    let on_breach = prop::sample::select(vec!["rollback", "pause", "PAUSE", ""]);
    let on_breach = prop_oneof![3 => on_breach.prop_map(Value::from), 1 => any_json()];
    (
        prop::option::weighted(0.9, target),
        prop::option::weighted(0.9, description),
        prop::option::of(on_breach),
        extra(),
    )
        .prop_map(|(t, d, o, extra)| object([("target", t), ("description", d), ("on_breach", o)], extra))
}

/// Fields no endpoint knows, now and then.
pub fn extra() -> impl Strategy<Value = BTreeMap<String, Value>> {
    prop_oneof![4 => Just(BTreeMap::new()), 1 => prop::collection::btree_map(json_key(), any_json(), 1..3)]
}

/// A JSON object of the fields present, over `extra`.
pub fn object<const N: usize>(fields: [(&str, Option<Value>); N], extra: BTreeMap<String, Value>) -> Value {
    let mut o: serde_json::Map<String, Value> = extra.into_iter().collect();
    for (k, v) in fields {
        if let Some(v) = v {
            o.insert(k.to_string(), v);
        }
    }
    Value::Object(o)
}

/// Bodies: mostly `shaped`, else any JSON, raw bytes, deep nesting, or one byte over 64 KiB.
pub fn any_body(shaped: BoxedStrategy<Value>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => shaped.prop_map(|v| serde_json::to_vec(&v).unwrap()),
        2 => any_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        2 => prop::collection::vec(any::<u8>(), 0..300),
        1 => (1usize..20_000).prop_map(|n| "[".repeat(n).into_bytes()),
        1 => Just(vec![b' '; 64 * 1024 + 1]),
    ]
}

/// One API call with what it carries.
#[derive(Debug, Clone)]
pub enum Call {
    Backup(Vec<u8>),
    Migration(Vec<u8>),
    Finish(Vec<u8>),
    GatePost(String, Vec<u8>),
    GateGet(String),
}

/// The Authorization header: mostly right, sometimes missing or wrong.
pub fn auth() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        8 => Just(Some(format!("Bearer {TOKEN}"))),
        1 => Just(None),
        1 => prop::sample::select(vec!["Bearer", "Bearer ", "bearer fuzz-token-5d1e", "Basic eDp5"]).prop_map(|s| Some(s.to_string())),
    ]
}

/// A query string as a script, a browser or an attacker might write it.
pub fn gate_query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        prop::sample::select(vec!["environment", "target", "Environment", "environment[]", "", "env"])
            .prop_map(str::to_string),
        prop::collection::vec(any::<u8>(), 0..6).prop_map(|b| percent(&b)),
    ];
    let value = prop_oneof![
        prop::sample::select(vec![
            "prod",
            "dev",
            "staging-shared",
            "PROD",
            "",
            TARGET,
            "%",
            "%zz",
            "pr%00od",
            "prod#x"
        ])
        .prop_map(str::to_string),
        prop::collection::vec(any::<u8>(), 0..12).prop_map(|b| percent(&b)),
    ];
    let pair = (key, prop::option::of(value), prop::sample::select(vec!["&", ";", "&&"]));
    let odd = prop::collection::vec(pair, 0..4).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v, sep)| match v {
                Some(v) => format!("{k}={v}{sep}"),
                None => format!("{k}{sep}"),
            })
            .collect::<String>()
    });
    // The right question, sometimes with a target of any shape.
    let target = prop::collection::vec(any::<u8>(), 0..24).prop_map(|b| format!("&target={}", percent(&b)));
    let asked = prop::option::of(prop_oneof![Just(format!("&target={TARGET}")), target])
        .prop_map(|t| format!("environment=prod{}", t.unwrap_or_default()));
    prop_oneof![3 => odd, 1 => asked]
}

/// A call to any endpoint that takes a body or a path parameter.
pub fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        3 => any_body(backup_body().boxed()).prop_map(Call::Backup),
        3 => any_body(migration_body().boxed()).prop_map(Call::Migration),
        2 => prop::collection::vec(any::<u8>(), 1..24).prop_map(Call::Finish),
        2 => (gate_query(), any_body(any_json().boxed())).prop_map(|(q, b)| Call::GatePost(q, b)),
    ]
}
