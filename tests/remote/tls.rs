//! https through the test nginx's TLS server, whose certificate is signed by a private CA made
//! here with the openssl command line (a hospital's own PKI): unknown without the CA bundle,
//! trusted with `--ca-cert` or `WSIVIEW_CA_BUNDLE`; a redirect from https to http is refused.

use super::*;

fn wsiview(args: &[&str], bundle_env: Option<&Path>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsiview"));
    command.args(args).env_remove("WSIVIEW_CA_BUNDLE");
    if let Some(bundle) = bundle_env {
        command.env("WSIVIEW_CA_BUNDLE", bundle);
    }
    command.output().unwrap_or_else(|e| panic!("{e}"))
}

fn info_json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn https_with_a_private_ca_needs_its_bundle() {
    let Some(tls) = nginx_tls() else { return };
    let address = format!("https://127.0.0.1:{}/sample.svs", tls.port);
    let ca = tls.ca.display().to_string();

    // The system's roots do not know the private CA.
    let out = wsiview(&["info", &address, "--json"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an unknown CA must not be trusted");
    assert!(stderr.contains(&address) && stderr.contains("TLS"), "{stderr}");

    // With the bundle, by flag or by environment: the same slide as the file, and no warning.
    let local = info_json(&wsiview(&["info", &sample().display().to_string(), "--json"], None));
    for out in [
        wsiview(&["info", &address, "--json", "--ca-cert", &ca], None),
        wsiview(&["info", &address, "--json"], Some(&tls.ca)),
    ] {
        assert!(!String::from_utf8_lossy(&out.stderr).contains("not encrypted"));
        let mut remote = info_json(&out);
        assert_eq!(remote["file"], address.as_str());
        remote["file"].take();
        let mut local = local.clone();
        local["file"].take();
        assert_eq!(remote, local);
    }

    // A bundle that cannot be used says why, naming the file.
    let out = wsiview(&["info", &address, "--ca-cert", "/nonexistent/ca.pem"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("cannot read the CA bundle /nonexistent/ca.pem"), "{stderr}");
    let out = wsiview(&["info", &address, "--ca-cert", &sample().display().to_string()], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("holds no certificate"), "{stderr}");
}

#[test]
fn a_redirect_from_https_to_http_is_never_followed() {
    let Some(tls) = nginx_tls() else { return };
    let address = format!("https://127.0.0.1:{}/downgrade.svs", tls.port);
    let out = wsiview(&["info", &address, "--ca-cert", &tls.ca.display().to_string()], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&address) && stderr.contains("redirected from https to an unencrypted URL"), "{stderr}");
}
