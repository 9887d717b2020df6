//! Owns the simulator's business data: the 230-domain portfolio, the revenue
//! streams behind the €2.3M ARR, customers, payments and affiliation, and the
//! JSON body of every endpoint. Everything derives from word lists and a fixed
//! date, so two runs (and two ports) serve byte-identical bodies.

use jiff::Span;
use jiff::civil::{Date, date};
use serde::Serialize;
use serde_json::{Value, json};

/// Number of domains in the NEXTGEN portfolio (SPEC).
pub const DOMAIN_COUNT: usize = 230;
/// Annual recurring revenue in euros (SPEC).
pub const ARR_EUR: u64 = 2_300_000;
/// Customers the dashboard reports; guards watch it with `no_drop`.
pub const CUSTOMER_COUNT: u64 = 1342;

/// The day the data describes; fixed so renewal dates never drift.
const AS_OF: Date = date(2025, 6, 1);
const VERSION: &str = "2.14.3";

// 23 × 10 = 230 distinct first-second pairs, hence 230 unique names.
const FIRSTS: [&str; 23] = [
    "alpine", "azure", "boreal", "cedar", "coastal", "crimson", "delta", "ember", "granite", "harbor", "ivory",
    "juniper", "lumen", "maple", "nordic", "orchid", "pacific", "quartz", "riviera", "sierra", "summit", "terra",
    "velvet",
];
const SECONDS: [&str; 10] =
    ["ventures", "capital", "studio", "labs", "market", "media", "travel", "energy", "health", "digital"];
const TLDS: [&str; 7] = ["com", "fr", "io", "eu", "net", "ch", "de"];
const REGISTRARS: [&str; 5] = ["Gandi", "OVHcloud", "Infomaniak", "Namecheap", "Cloudflare"];
const TENANTS: [&str; 12] = [
    "Maison Dubois SARL",
    "Helvetia Reisen AG",
    "Nordlicht Media GmbH",
    "Atelier Lumière SAS",
    "Costa Verde Turismo SL",
    "Brightpath Analytics Ltd",
    "Studio Carrara Srl",
    "Van Dijk Energie BV",
    "Solenne Santé SAS",
    "Kestrel Capital Partners LLP",
    "Boulangerie Numérique SAS",
    "Alpenglow Outdoor AG",
];

/// ARR by stream in euros; sums to `ARR_EUR` (checked by a test).
const STREAMS: [(&str, u64); 5] = [
    ("domain_rental", 920_000),
    ("affiliation", 460_000),
    ("saas_services", 414_000),
    ("subscriptions", 345_000),
    ("partnership_commissions", 161_000),
];

/// One domain of the portfolio, as `/api/domains` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct Domain {
    pub name: String,
    pub tld: &'static str,
    pub status: &'static str,
    pub monthly_rent_eur: u32,
    pub renewal_date: Date,
    pub tenant: Option<&'static str>,
    pub registrar: &'static str,
}

/// The whole portfolio, built once.
pub fn portfolio() -> Vec<Domain> {
    (0..DOMAIN_COUNT).map(domain).collect()
}

fn domain(i: usize) -> Domain {
    let tld = TLDS[i % TLDS.len()];
    // Multiplying by a number coprime to the modulus scatters the statuses,
    // rents and dates so neighbours in the list do not look alike.
    let status = match (i * 7 + 3) % 20 {
        0..15 => "rented",
        15..19 => "available",
        _ => "reserved",
    };
    let days = 1 + (i * 53 % 365) as i64;
    Domain {
        name: format!("{}-{}.{tld}", FIRSTS[i / SECONDS.len()], SECONDS[i % SECONDS.len()]),
        tld,
        status,
        monthly_rent_eur: 150 + (i * 37 % 29) as u32 * 20,
        renewal_date: AS_OF.saturating_add(Span::new().days(days)),
        tenant: (status == "rented").then(|| TENANTS[i * 5 % TENANTS.len()]),
        registrar: REGISTRARS[i * 3 % REGISTRARS.len()],
    }
}

fn eur(cents: u64) -> f64 {
    cents as f64 / 100.0
}

/// Monthly share of an annual amount, rounded to the cent.
fn monthly(arr_eur: u64) -> f64 {
    eur((arr_eur * 100 + 6) / 12)
}

/// The landing's home page, as JSON like every body here.
pub fn landing_home() -> Value {
    json!({ "page": "home", "service": "nextgen-landing", "version": VERSION, "domains_offered": 230 })
}

pub fn health(service: &str) -> Value {
    json!({
        "status": "ok",
        "service": service,
        "version": VERSION,
        "checks": { "database": "ok", "redis": "ok", "payments_gateway": "ok" },
    })
}

pub fn admin_health() -> Value {
    json!({
        "status": "ok",
        "service": "nextgen-admin",
        "version": VERSION,
        "admin_users": 6,
        "pending_jobs": 0,
        "last_backup": { "status": "ok", "completed_at": "2025-06-01T02:00:00Z" },
    })
}

pub fn revenue_status() -> Value {
    json!({
        "status": "ok",
        "arr_eur": ARR_EUR,
        "mrr_eur": monthly(ARR_EUR),
        "currency": "EUR",
        "as_of": AS_OF,
        "growth_mom_pct": 1.8,
        "streams": STREAMS.len(),
    })
}

pub fn analytics_revenue() -> Value {
    let streams: Vec<Value> = STREAMS
        .iter()
        .map(|&(name, arr)| {
            json!({
                "stream": name,
                "arr_eur": arr,
                "mrr_eur": monthly(arr),
                "share_pct": eur(arr * 10_000 / ARR_EUR),
            })
        })
        .collect();
    json!({
        "currency": "EUR",
        "as_of": AS_OF,
        "arr_eur": ARR_EUR,
        "mrr_eur": monthly(ARR_EUR),
        "breakdown": streams,
    })
}

pub fn payments_health() -> Value {
    json!({
        "status": "ok",
        "provider": "stripe",
        "gateway_latency_ms": 212,
        "success_rate_24h": 0.9982,
        "webhooks": "ok",
    })
}

pub fn payments_status() -> Value {
    json!({
        "status": "ok",
        "currency": "EUR",
        "transactions_24h": 3842,
        "volume_24h_eur": 6301.37,
        "failed_24h": 7,
        "pending": 3,
        "refunds_24h": 2,
    })
}

pub fn domains_list(domains: &[Domain]) -> Value {
    json!({ "count": domains.len(), "domains": domains })
}

pub fn domains_count(domains: &[Domain]) -> Value {
    json!({ "count": domains.len() })
}

pub fn domains_health(domains: &[Domain]) -> Value {
    json!({
        "status": "ok",
        "total": domains.len(),
        "dns_resolving": domains.len(),
        "tls_valid": domains.len(),
        "registrar_api": "ok",
    })
}

pub fn portfolio_status(domains: &[Domain]) -> Value {
    let with = |s: &str| domains.iter().filter(|d| d.status == s).count();
    let horizon = AS_OF.saturating_add(Span::new().days(30));
    let expiring = domains.iter().filter(|d| d.renewal_date <= horizon).count();
    let rent: u64 = domains.iter().filter(|d| d.status == "rented").map(|d| u64::from(d.monthly_rent_eur)).sum();
    json!({
        "status": "ok",
        "total": domains.len(),
        "rented": with("rented"),
        "available": with("available"),
        "reserved": with("reserved"),
        "expiring_30d": expiring,
        "monthly_rent_eur": rent,
        "as_of": AS_OF,
    })
}

pub fn customers_count() -> Value {
    json!({
        "count": CUSTOMER_COUNT,
        "active": 1187,
        "trial": 64,
        "churned_30d": 9,
        "new_30d": 41,
        "segments": { "smb": 1021, "mid_market": 287, "enterprise": 34 },
    })
}

pub fn affiliation_status() -> Value {
    json!({
        "status": "ok",
        "partners": 58,
        "active_partners": 47,
        "clicks_30d": 184_320,
        "conversions_30d": 2_417,
        "commission_mrr_eur": monthly(STREAMS[1].1),
        "currency": "EUR",
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_portfolio_holds_230_unique_names() {
        let domains = portfolio();
        let names: HashSet<&str> = domains.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(domains.len(), DOMAIN_COUNT);
        assert_eq!(names.len(), DOMAIN_COUNT);
        assert_eq!(domains[0].name, "alpine-ventures.com");
    }

    #[test]
    fn revenue_streams_sum_to_the_arr() {
        assert_eq!(STREAMS.iter().map(|s| s.1).sum::<u64>(), ARR_EUR);
        assert_eq!(monthly(ARR_EUR), 191_666.67);
    }

    #[test]
    fn only_rented_domains_have_a_tenant() {
        for d in portfolio() {
            assert_eq!(d.tenant.is_some(), d.status == "rented", "{}", d.name);
            assert!(d.renewal_date > AS_OF, "{}", d.name);
        }
    }
}
