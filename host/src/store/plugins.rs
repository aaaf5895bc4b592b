//! Uploaded plugin components and their validated manifests.

use sqlx::Row;

use super::{now_ms, Store, StoreError, StoreResult};

/// A plugin component as stored.
#[derive(Clone, Debug)]
pub struct StoredPlugin {
    /// `sha256:<hex>` of the bytes.
    pub id: String,
    /// Manifest name.
    pub name: String,
    /// Manifest version.
    pub version: String,
    /// Component size in bytes.
    pub size: i64,
    /// Validated manifest, JSON text.
    pub manifest: String,
    /// Whether this version serves new calls.
    pub active: bool,
    /// Upload time, ms since the epoch.
    pub created_at: i64,
}

impl Store {
    /// Store a validated component and make it the active version of its name. Uploading
    /// the same bytes again reactivates the stored row.
    pub async fn put_plugin(
        &self,
        plugin: &StoredPlugin,
        wasm: &[u8],
    ) -> StoreResult<StoredPlugin> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE plugins SET active = 0 WHERE name = $1")
            .bind(&plugin.name)
            .execute(&mut *tx)
            .await?;
        let created_at = now_ms();
        sqlx::query(
            "INSERT INTO plugins (id, name, version, size, wasm, manifest, active, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7) \
             ON CONFLICT (id) DO UPDATE SET active = 1",
        )
        .bind(&plugin.id)
        .bind(&plugin.name)
        .bind(&plugin.version)
        .bind(plugin.size)
        .bind(wasm)
        .bind(&plugin.manifest)
        .bind(created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.get_plugin(&plugin.id).await
    }

    /// All stored plugins, newest first.
    pub async fn list_plugins(&self) -> StoreResult<Vec<StoredPlugin>> {
        let rows = sqlx::query(
            "SELECT id, name, version, size, manifest, active, created_at FROM plugins \
             ORDER BY created_at DESC, id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(decode).collect()
    }

    /// One stored plugin.
    pub async fn get_plugin(&self, id: &str) -> StoreResult<StoredPlugin> {
        let row = sqlx::query(
            "SELECT id, name, version, size, manifest, active, created_at FROM plugins WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("plugin {id}")))?;
        decode(&row)
    }

    /// The component bytes of a stored plugin.
    pub async fn plugin_wasm(&self, id: &str) -> StoreResult<Vec<u8>> {
        let row = sqlx::query("SELECT wasm FROM plugins WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("plugin {id}")))?;
        Ok(row.try_get::<Vec<u8>, _>(0)?)
    }

    /// Delete a stored plugin; the newest remaining version of its name becomes active.
    pub async fn delete_plugin(&self, id: &str) -> StoreResult<()> {
        let plugin = self.get_plugin(id).await?;
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM plugins WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if plugin.active {
            sqlx::query(
                "UPDATE plugins SET active = 1 WHERE id = \
                 (SELECT id FROM plugins WHERE name = $1 ORDER BY created_at DESC LIMIT 1)",
            )
            .bind(&plugin.name)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn decode(row: &sqlx::any::AnyRow) -> StoreResult<StoredPlugin> {
    Ok(StoredPlugin {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        size: row.try_get("size")?,
        manifest: row.try_get("manifest")?,
        active: row.try_get::<i64, _>("active")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support;

    fn plugin(id: &str, version: &str) -> StoredPlugin {
        StoredPlugin {
            id: id.into(),
            name: "demo".into(),
            version: version.into(),
            size: 3,
            manifest: "{}".into(),
            active: true,
            created_at: 0,
        }
    }

    #[tokio::test]
    async fn newest_upload_is_active_and_delete_restores_previous() {
        let (store, _dir) = test_support::sqlite().await;
        store
            .put_plugin(&plugin("sha256:a", "1.0.0"), b"one")
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let second = store
            .put_plugin(&plugin("sha256:b", "1.1.0"), b"two")
            .await
            .unwrap();
        assert!(second.active);
        assert!(!store.get_plugin("sha256:a").await.unwrap().active);
        assert_eq!(store.plugin_wasm("sha256:b").await.unwrap(), b"two");

        store.delete_plugin("sha256:b").await.unwrap();
        assert!(store.get_plugin("sha256:a").await.unwrap().active);
        assert!(matches!(
            store.get_plugin("sha256:b").await,
            Err(StoreError::NotFound(_))
        ));
    }
}
