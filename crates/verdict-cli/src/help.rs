//! Examples shown after each subcommand's `--help`.

pub const TRACE: &str = "Examples:
  verdict trace --from world --to ingress --port 80 examples/shop-gateway/
  verdict trace --from ingress --to shop/deployment/api --port 8080 -o json manifests/
  verdict trace --from shop/web-0 --to cidr:10.1.0.0/16 --port 53 --protocol UDP manifests/

Exit: 0 delivered, 1 denied, 2 input error.";

pub const PATHS: &str = "Examples:
  verdict paths examples/shop-gateway/
  verdict paths --client 203.0.113.0/24 --namespace shop manifests/
  verdict paths -o markdown manifests/ >> \"$GITHUB_STEP_SUMMARY\"
  verdict paths -o github manifests/      # annotations in a GitHub Actions job
  verdict paths --context prod            # the live cluster
  verdict paths --context prod pr/        # the live cluster plus the manifests of a PR

Exit: 0 every path allowed, 1 a path denied, 2 input error or a path not checked.";

pub const REPLAY: &str = "Examples:
  hubble observe -o json --since 1h > flows.json
  verdict replay --flows flows.json manifests/
  verdict replay --flows captures/ --flows more.json.gz -o markdown manifests/
  verdict replay --flows - -o json manifests/ < flows.json

Exit: 0 nothing --fail-on fails on, 1 an observed connection would break, 2 input error.";

pub const MATRIX: &str = "Examples:
  verdict matrix examples/shop-gateway/
  verdict matrix --namespace shop -o csv manifests/ > matrix.csv
  verdict matrix -o dot manifests/ | dot -Tsvg > matrix.svg
  verdict matrix --summarise -o json manifests/   # rows between groups of identities";

pub const DIFF: &str = "Examples:
  verdict diff old/ new/
  verdict diff --git origin/main HEAD --path deploy/ -o markdown
  verdict diff --git HEAD~1 HEAD --fail-on breaking,path-exposure
  verdict diff --context prod --cluster-base policies/   # the cluster now vs with this PR applied

Exit: 0 nothing --fail-on fails on, 1 it does, 2 input or git error.";

pub const SNAPSHOT: &str = "Examples:
  verdict snapshot --context prod -o prod-snapshot/
  verdict snapshot --kubeconfig ~/.kube/staging.yaml -o snap/ && verdict paths snap/
  verdict snapshot --in-cluster -o /tmp/state/

Exit: 0 every kind read, 2 a kind could not be listed (the others are written) or the cluster cannot be read.";

pub const REPORT: &str = "Examples:
  verdict report examples/shop-gateway/ -o shop.html
  verdict report --client 203.0.113.0/24 manifests/";

pub const GENERATE: &str = "Examples:
  verdict generate examples/broken/gateway-wrong-port/
  verdict generate --client 203.0.113.0/24 --out-dir generated/ manifests/
  verdict generate --only-missing --merge manifests/

Exit: 0 written and verified, 1 verification failed, 2 input error.";

pub const LINT: &str = "Examples:
  verdict lint manifests/
  verdict lint -o sarif manifests/ > verdict.sarif
  verdict lint -o junit manifests/ > lint-junit.xml
  verdict lint -o github manifests/       # annotations in a GitHub Actions job
  verdict lint --disable VRD004 --level VRD007=error --fail-on error manifests/
  verdict lint --explain VRD001

Exit: 0 no finding at or above --fail-on, 1 findings, 2 input error.";

pub const POLICY: &str = "Examples:
  verdict policy shop/deployment/api examples/shop-gateway/
  verdict policy ingress -o json manifests/";

pub const TEST: &str = "Examples:
  verdict test examples/
  verdict test --junit policytest-junit.xml tests/
  verdict test -o github tests/           # annotations in a GitHub Actions job

Exit: 0 every expectation holds, 1 one fails, 2 input error.";

pub const CHECK: &str = "Examples:
  verdict check manifests/
  kubectl get cnp,netpol,pods,svc -A -o yaml | verdict check -
  verdict check --context prod            # what verdict reads from the live cluster, and what it cannot list";

pub const MAIN: &str = "Examples:
  verdict paths examples/shop-gateway/
  verdict lint manifests/
  verdict diff --git origin/main HEAD --path deploy/
  verdict paths --context prod            # read the live cluster (see docs/live-cluster.md)
  kubectl verdict paths manifests/        # installed as the kubectl plugin kubectl-verdict

Documentation: README.md and docs/ in the repository.";

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every subcommand is described and has examples; every argument of
    /// every subcommand (and every global option) is described.
    #[test]
    fn every_argument_is_described() {
        let cmd = crate::Cli::command();
        let mut missing = Vec::new();
        for a in cmd.get_arguments() {
            if a.get_help().is_none() {
                missing.push(format!("verdict --{}", a.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            let name = sub.get_name();
            if sub.get_about().is_none() {
                missing.push(format!("verdict {name} (about)"));
            }
            if !sub.is_hide_set() && sub.get_after_help().is_none() {
                missing.push(format!("verdict {name} (examples)"));
            }
            for a in sub.get_arguments() {
                if a.is_global_set() {
                    continue;
                }
                if a.get_help().is_none() {
                    missing.push(format!("verdict {name} {}", a.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "not described: {missing:#?}");
    }
}
