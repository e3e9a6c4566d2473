//! Issue 7 §6: domain verification against a real DNS server on loopback
//! (`muster_testkit::dns`), answered over UDP and, when the answer is too
//! long, TCP — the same resolver code production uses, pointed at it.

use crate::signin::PW;
use crate::{TestApp, both, json};
use axum::http::StatusCode;
use muster_testkit::dns::DnsServer;
use serde_json::Value;

async fn claim(t: &TestApp, slug: &str, token: &str, domain: &str) -> (StatusCode, Value) {
    t.call(
        "POST",
        &format!("/api/v1/orgs/{slug}/domains"),
        Some(token),
        Some(json!({"domain": domain})),
    )
    .await
}

async fn verify(t: &TestApp, slug: &str, token: &str, domain: &str) -> (StatusCode, Value) {
    t.call(
        "POST",
        &format!("/api/v1/orgs/{slug}/domains/{domain}/verify"),
        Some(token),
        None,
    )
    .await
}

async fn domains_are_proved_in_dns_and_belong_to_one_organization(mut t: TestApp) {
    let dns = DnsServer::start().await;
    t.with_dns(dns.addr);
    let acme = t.org_with_owner("acme").await;
    let beta = t.org_with_owner("beta").await;
    let (s, d) = claim(&t, "acme", &acme, " Acme.EXAMPLE. ").await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    assert_eq!(d["domain"], "acme.example");
    assert_eq!(d["verified"], false);
    let record = d["txt_record"].as_str().unwrap().to_owned();
    assert!(record.starts_with("muster-verification="), "{record}");

    // Bad claims change nothing.
    let (_, member) = t
        .user_with_token("acme", "m@acme.example", &["member"])
        .await;
    let before = t.fingerprint().await;
    for (domain, want) in [
        ("gmail.com", StatusCode::UNPROCESSABLE_ENTITY),
        ("GoogleMail.com", StatusCode::UNPROCESSABLE_ENTITY),
        ("not a domain", StatusCode::UNPROCESSABLE_ENTITY),
        ("localhost", StatusCode::UNPROCESSABLE_ENTITY),
        ("acme.example", StatusCode::CONFLICT),
    ] {
        let (s, p) = claim(&t, "acme", &acme, domain).await;
        assert_eq!(s, want, "{domain}: {p}");
        assert!(p["detail"].is_string());
    }
    assert_eq!(
        claim(&t, "acme", &member, "other.example").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(t.fingerprint().await, before);

    // No record, or a record with another token: refused, saying why.
    let (s, p) = verify(&t, "acme", &acme, "acme.example").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert!(p["detail"].as_str().unwrap().contains(&record), "{p}");
    dns.set_txt(
        "acme.example",
        &["muster-verification=not-the-token", "v=spf1 -all"],
    );
    let (s, p) = verify(&t, "acme", &acme, "acme.example").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("2 other TXT record(s)"),
        "{p}"
    );
    assert_eq!(t.audit_count("domain.verification_failed", "").await, 2);
    assert_eq!(t.audit_count("domain.verified", "").await, 0);

    // The right record: verified.
    dns.set_txt("acme.example", &["v=spf1 -all", &record]);
    let (s, d) = verify(&t, "acme", &acme, "acme.example").await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["verified"], true);
    assert!(dns.queries().0 >= 3, "asked over UDP each time");

    // Nobody else can claim it now, nor verify it with their own token.
    let before = t.fingerprint().await;
    let (s, p) = claim(&t, "beta", &beta, "acme.example").await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    assert_eq!(t.fingerprint().await, before);
    let (_, a) = claim(&t, "acme", &acme, "shared.example").await;
    let (_, b) = claim(&t, "beta", &beta, "shared.example").await;
    let (ta, tb) = (
        a["txt_record"].as_str().unwrap(),
        b["txt_record"].as_str().unwrap(),
    );
    dns.set_txt("shared.example", &[ta, tb]);
    assert_eq!(
        verify(&t, "acme", &acme, "shared.example").await.0,
        StatusCode::OK
    );
    let (s, p) = verify(&t, "beta", &beta, "shared.example").await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    // Given up, it is free again.
    let (s, _) = t
        .call(
            "DELETE",
            "/api/v1/orgs/acme/domains/shared.example",
            Some(&acme),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        verify(&t, "beta", &beta, "shared.example").await.0,
        StatusCode::OK
    );
    // Another organization's claim is not this one's to verify or remove.
    assert_eq!(
        verify(&t, "acme", &acme, "shared.example").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.call(
            "DELETE",
            "/api/v1/orgs/acme/domains/shared.example",
            Some(&acme),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );

    // An answer too long for UDP comes again over TCP.
    let (_, big) = claim(&t, "acme", &acme, "big.example").await;
    let filler: Vec<String> = (0..12)
        .map(|i| format!("filler-{i}-{}", "x".repeat(50)))
        .collect();
    let mut records: Vec<&str> = filler.iter().map(String::as_str).collect();
    records.push(big["txt_record"].as_str().unwrap());
    dns.set_txt("big.example", &records);
    let (s, d) = verify(&t, "acme", &acme, "big.example").await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert!(
        dns.queries().1 >= 1,
        "the truncated answer was asked again over TCP"
    );
    let (_, list) = t
        .call("GET", "/api/v1/orgs/acme/domains", Some(&acme), None)
        .await;
    let verified: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["verified"] == true)
        .map(|d| d["domain"].as_str().unwrap())
        .collect();
    assert_eq!(verified, ["acme.example", "big.example"]);
}
both!(domains_are_proved_in_dns_and_belong_to_one_organization);

async fn people_at_a_verified_domain_join_when_the_organization_allows_it(mut t: TestApp) {
    let dns = DnsServer::start().await;
    t.with_dns(dns.addr);
    let acme = t.org_with_owner("acme").await;
    let (_, d) = claim(&t, "acme", &acme, "acme.example").await;
    dns.set_txt("acme.example", &[d["txt_record"].as_str().unwrap()]);
    assert_eq!(
        verify(&t, "acme", &acme, "acme.example").await.0,
        StatusCode::OK
    );
    let signup = |email: &'static str| {
        let t = &t;
        async move {
            t.call(
                "POST",
                "/api/v1/auth/signup",
                None,
                Some(json!({"email": email, "password": PW, "org": "acme"})),
            )
            .await
            .0
        }
    };
    // Verified, but the organization has not said people may join by it.
    assert_eq!(signup("new@acme.example").await, StatusCode::FORBIDDEN);
    let (s, v) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/signup-policy",
            Some(&acme),
            Some(json!({"join_verified_domains": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(signup("new@acme.example").await, StatusCode::ACCEPTED);
    assert_eq!(
        signup("New@ACME.example").await,
        StatusCode::ACCEPTED,
        "the same person, asked again"
    );
    assert_eq!(
        signup("someone@elsewhere.example").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        signup("sub@mail.acme.example").await,
        StatusCode::FORBIDDEN,
        "only the verified name itself"
    );
    let (_, users) = t
        .call(
            "GET",
            "/api/v1/orgs/acme/users?q=acme.example",
            Some(&acme),
            None,
        )
        .await;
    let emails: Vec<&str> = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert!(emails.contains(&"new@acme.example"), "{emails:?}");
    assert!(
        !emails
            .iter()
            .any(|e| e.contains("elsewhere") || e.starts_with("sub@"))
    );
}
both!(people_at_a_verified_domain_join_when_the_organization_allows_it);
