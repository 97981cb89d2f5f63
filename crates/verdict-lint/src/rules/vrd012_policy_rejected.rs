use crate::{Context, Finding, Level, Meta, Rule};

/// ## What it does
/// Reports policies that Cilium (or the API server) refuses: a CIDR
/// `except` outside its `cidr`, L7 rules on port 0, a `nodeSelector` in a
/// namespaced policy, two kinds of peer in one rule item, an unknown entity,
/// wrong types, ... The message is Cilium's own.
///
/// ## Why is this bad
/// A refused policy is not enforced at all: whatever it was meant to allow
/// stays denied, whatever it was meant to deny stays allowed.
///
/// ## Example
/// ```yaml
/// ingress:
///   - fromCIDRSet:
///       - cidr: 10.0.0.0/8
///         except: [192.168.0.0/16]   # not inside 10.0.0.0/8
/// ```
///
/// ## How to fix
/// Correct the part that Cilium's message names.
pub struct PolicyRejected;

impl Rule for PolicyRejected {
    fn meta(&self) -> Meta {
        Meta {
            code: "VRD012",
            name: "policy-rejected",
            level: Level::Error,
            summary: "Cilium would refuse this policy",
        }
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        for p in &cx.inv.policies {
            if let Some(why) = &p.rejected {
                out.push(self.meta().finding(
                    p.location.clone(),
                    Some(p.object.clone()),
                    None,
                    format!("Cilium refuses this policy: {why}"),
                    "correct the part the message names; until then the policy is not enforced at all".to_string(),
                ));
            }
        }
    }
}
