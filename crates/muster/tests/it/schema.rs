//! Contracts that must not drift: migrations in step across dialects, and the
//! OpenAPI document (snapshotted).

use muster_testkit::muster_store::{Backend, Db};

#[test]
fn both_dialects_have_the_same_migrations() {
    let sqlite = Db::migration_names(Backend::Sqlite);
    let pg = Db::migration_names(Backend::Postgres);
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, pg);
}

#[test]
fn the_openapi_document_is_unchanged() {
    let doc = serde_json::to_value(muster_web::api::v1::openapi()).unwrap();
    insta::assert_json_snapshot!("openapi", doc);
}

#[test]
fn every_route_documents_its_errors_as_problem_details() {
    let doc = serde_json::to_value(muster_web::api::v1::openapi()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 15, "{}", paths.len());
    assert!(paths.contains_key("/orgs/{org}/audit-events"));
}
