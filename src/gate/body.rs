//! The gate's wire form (SPEC): `{"decision":"go"|"no-go","environment":…,
//! "reasons":[{"code":…,"message":…}],"evaluated_at":RFC3339}`, answered with
//! 200 for go and 409 for no-go. The server writes it from a `GateDecision`;
//! `guardian gate` reads it back. Unknown fields are accepted when reading, so
//! the server may add fields without breaking older clients.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::GateDecision;

/// The gate's answer in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    #[serde(rename = "go")]
    Go,
    #[serde(rename = "no-go")]
    NoGo,
}

/// The JSON body of a gate answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateBody {
    pub decision: Verdict,
    pub environment: String,
    pub reasons: Vec<BodyReason>,
    pub evaluated_at: Timestamp,
}

/// One reason as it travels: the code is a plain string so that a client
/// still reads an answer carrying a code it does not know yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyReason {
    pub code: String,
    pub message: String,
}

impl Verdict {
    /// `go` or `no-go`, as in the body.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Go => "go",
            Self::NoGo => "no-go",
        }
    }

    /// The HTTP status that goes with it: 200 go, 409 no-go (SPEC).
    pub const fn http_status(self) -> u16 {
        match self {
            Self::Go => 200,
            Self::NoGo => 409,
        }
    }
}

impl GateDecision {
    pub fn verdict(&self) -> Verdict {
        if self.go { Verdict::Go } else { Verdict::NoGo }
    }

    /// The body to answer with; serialize this, not the decision itself.
    pub fn body(&self) -> GateBody {
        GateBody {
            decision: self.verdict(),
            environment: self.environment.as_str().to_string(),
            reasons: self
                .reasons
                .iter()
                .map(|r| BodyReason { code: r.code.to_string(), message: r.message.clone() })
                .collect(),
            evaluated_at: self.evaluated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Environment;
    use crate::gate::{Reason, ReasonCode};

    #[test]
    fn a_no_go_decision_serializes_to_the_body_of_spec() {
        let decision = GateDecision {
            environment: Environment::StagingShared,
            go: false,
            reasons: vec![Reason::new(ReasonCode::OutsideWindow, "closed")],
            evaluated_at: "2026-11-25T14:02:00Z".parse().unwrap(),
        };
        let body = decision.body();
        assert_eq!(body.decision.http_status(), 409);
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "decision": "no-go",
                "environment": "staging-shared",
                "reasons": [{"code": "outside_window", "message": "closed"}],
                "evaluated_at": "2026-11-25T14:02:00Z"
            })
        );
        let back: GateBody = serde_json::from_value(json).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn reading_accepts_fields_added_later() {
        let text = r#"{"decision":"go","environment":"prod","reasons":[],"evaluated_at":"2026-01-01T00:00:00Z","x":1}"#;
        let body: GateBody = serde_json::from_str(text).unwrap();
        assert_eq!(body.decision, Verdict::Go);
        assert_eq!(Verdict::Go.http_status(), 200);
    }
}
