//! The AI engine's admin API: `POST {admin_url}/api-keys {"name"}` -> 201 `{id, key}`,
//! `GET {admin_url}/api-keys?name=` -> `{keys: [{id, name, key}]}`, `DELETE
//! {admin_url}/api-keys/{id}` -> 204 (404 if gone); a key works if `GET {check_url}` with
//! `Authorization: Bearer <key>` answers 200. Admin calls carry the admin token as a bearer.

use futures::future::BoxFuture;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::provider::{Admin, Call, CreateError, Found, KeyProvider, Upstream};
use super::secret::KeySecret;

pub struct AiEngine<'a> {
    upstream: Upstream<'a>,
    keys_url: String,
    check_url: &'a str,
}

#[derive(Deserialize)]
struct Listed {
    id: String,
    name: String,
    key: String,
}

#[derive(Deserialize)]
struct Listing {
    keys: Vec<Listed>,
}

#[derive(Deserialize)]
struct Created {
    id: String,
    key: String,
}

impl<'a> AiEngine<'a> {
    pub fn new(upstream: Upstream<'a>, secret: &'a KeySecret) -> Option<AiEngine<'a>> {
        Some(AiEngine {
            upstream,
            keys_url: format!("{}/api-keys", secret.field("admin_url")?.trim_end_matches('/')),
            check_url: secret.field("check_url")?,
        })
    }
}

impl KeyProvider for AiEngine<'_> {
    fn admin_field(&self) -> &'static str {
        "admin_secret_arn"
    }

    fn find<'a>(&'a self, admin: &'a Admin, name: &'a str) -> Call<'a, Vec<Found>> {
        Box::pin(async move {
            let operation = "list keys";
            let request = || self.upstream.http.get(&self.keys_url).query(&[("name", name)]).bearer_auth(&admin.bearer);
            let response = self.upstream.send(operation, request).await?;
            if response.status() != StatusCode::OK {
                return Err(self.upstream.failed(operation, format!("answered HTTP {}", response.status())));
            }
            let listing: Listing =
                response.json().await.map_err(|_| self.upstream.failed(operation, "answered an unexpected body"))?;
            Ok(listing
                .keys
                .into_iter()
                .filter(|k| k.name == name)
                .map(|k| Found { id: k.id, key: Some(k.key) })
                .collect())
        })
    }

    fn reveal<'a>(&'a self, _admin: &'a Admin, found: &'a Found) -> Call<'a, String> {
        Box::pin(async move {
            found.key.clone().ok_or_else(|| self.upstream.failed("list keys", "listed a key without its value"))
        })
    }

    fn create<'a>(&'a self, admin: &'a Admin, name: &'a str) -> BoxFuture<'a, Result<(String, String), CreateError>> {
        Box::pin(async move {
            let body = json!({ "name": name });
            let request = || self.upstream.http.post(&self.keys_url).json(&body).bearer_auth(&admin.bearer);
            let response = self.upstream.send_create(request, &[StatusCode::CREATED, StatusCode::OK]).await?;
            let created: Created = response.json().await.map_err(|_| {
                CreateError::Unknown(self.upstream.failed("create a key", "answered an unexpected body"))
            })?;
            Ok((created.id, created.key))
        })
    }

    fn revoke<'a>(&'a self, admin: &'a Admin, id: &'a str) -> Call<'a, ()> {
        Box::pin(async move { self.upstream.delete_key(&self.keys_url, id, &admin.bearer).await })
    }

    fn check<'a>(&'a self, key: &'a str) -> Call<'a, ()> {
        Box::pin(async move { self.upstream.check(self.check_url, "authorization", &format!("Bearer {key}")).await })
    }
}
