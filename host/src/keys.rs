//! `outrider keys rotate`: re-encrypt every secret at rest under the current key.
//!
//! Rotation is two steps for the operator: put the new key first in
//! `OUTRIDER_ENCRYPTION_KEY` (`new:...,old:...`) and run this command; once it reports 0
//! left under old keys, the old key can be removed.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::ServeConfig;
use crate::crypto::Keyring;
use crate::delivery::credentials_aad;
use crate::store::Store;

/// Re-encrypt everything not under the current key; returns how many were rewritten.
pub async fn rotate(config: ServeConfig) -> anyhow::Result<()> {
    let spec = config
        .encryption_key
        .clone()
        .context("OUTRIDER_ENCRYPTION_KEY must list the new key first, then the old ones")?;
    let keyring = Keyring::from_env_value(&spec).context("OUTRIDER_ENCRYPTION_KEY")?;
    let store = Store::open(config.database_url.as_deref(), &config.data_dir).await?;
    store.migrate().await?;
    let rewritten = rotate_store(&store, &keyring).await?;
    println!(
        "re-encrypted {rewritten} secret(s) under key `{}`",
        keyring.current_kid()
    );
    Ok(())
}

/// Re-encrypt every destination's credentials under the current key.
pub async fn rotate_store(store: &Store, keyring: &Keyring) -> anyhow::Result<u64> {
    let destinations = store.all_destinations().await?;
    let bar = ProgressBar::new(destinations.len() as u64).with_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}").expect("valid template"),
    );
    bar.set_message("destinations");
    let mut rewritten = 0;
    for mut destination in destinations {
        if keyring.needs_rotation(&destination.credentials) {
            let aad = credentials_aad(&destination.id);
            destination.credentials = keyring
                .reencrypt(&destination.credentials, aad.as_bytes())
                .with_context(|| {
                    format!(
                        "destination {}: cannot decrypt with any configured key",
                        destination.id
                    )
                })?;
            store
                .set_destination_credentials(&destination.id, &destination.credentials)
                .await?;
            rewritten += 1;
        }
        bar.inc(1);
    }
    bar.finish();
    // Encrypted environment variables and sealed configuration parameters (with history).
    rewritten += crate::integration::rotation::rotate(store, keyring).await?;
    Ok(rewritten)
}
