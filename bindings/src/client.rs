//! The client object: the store, the sync client and the sync engine of one
//! device, behind calls that never block the caller (everything slow is
//! `async` and runs on the library's runtime).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use sambung_core::lifecycle::Status;
use sambung_core::model::{AttachmentRef, AttachmentRole, Request, RequestContent, RequestId};
use sambung_core::photo::PhotoSettings;
use sambung_core::store::{AttachmentUpload, Identity, ListFilter, Secret, Store, Summary};
use sambung_core::sync::{self as core_sync, EngineConfig, ServerTrust, SyncConfig, SyncEngine};

use crate::error::SambungError;
use crate::keys::{KeyProvider, Provider};
use crate::records::{
    ClientConfig, EnrollmentInfo, ListQuery, RequestObserver, SyncProgress, SyncReport,
};
use crate::runtime::{blocking, runtime, spawn};

type Observers = Mutex<HashMap<u64, Arc<dyn RequestObserver>>>;

struct State {
    store: Option<Arc<Store>>,
    engine: Option<SyncEngine>,
}

/// One device's requests and their sync. Open it with [`Client::open`].
#[derive(uniffi::Object)]
pub struct Client {
    dir: PathBuf,
    config: ClientConfig,
    /// The app's key provider, asked again when a second handle on the
    /// store is needed (enrollment, rekey); the key is never kept here.
    keys: Mutex<Arc<dyn KeyProvider>>,
    state: RwLock<State>,
    observers: Arc<Observers>,
    next_observer: AtomicU64,
    /// What the platform last said of the link (for `sync_now`; the
    /// engine keeps its own).
    metered: AtomicBool,
}

/// An observation of request changes; it stops when dropped (or closed).
#[derive(uniffi::Object)]
pub struct Subscription {
    observers: Weak<Observers>,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(o) = self.observers.upgrade() {
            o.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
        }
    }
}

fn notify(observers: &Observers, ids: Vec<RequestId>) {
    if ids.is_empty() {
        return;
    }
    // Called outside the lock: an observer may call back into the client.
    let list: Vec<_> = observers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .cloned()
        .collect();
    for o in list {
        o.on_change(ids.clone());
    }
}

fn sync_config(config: &ClientConfig) -> Result<SyncConfig, SambungError> {
    let mut trust = ServerTrust::default();
    if let Some(pem) = &config.ca_pem {
        trust = trust.with_roots_pem(pem.as_bytes())?;
    }
    for pin in &config.pins {
        trust = trust.with_pin_hex(pin)?;
    }
    let mut sync = SyncConfig {
        trust,
        large_on_metered: config.large_uploads_on_metered,
        ..SyncConfig::default()
    };
    if let Some(b) = config.budget_bytes {
        sync.budget_bytes = (b as usize).max(4096);
    }
    Ok(sync)
}

impl Client {
    fn key_provider(&self) -> Arc<dyn KeyProvider> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn store(&self) -> Result<Arc<Store>, SambungError> {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .store
            .clone()
            .ok_or(SambungError::Storage {
                reason: "this client's store was wiped; open a new client".into(),
            })
    }

    /// Starts the background engine when enrolled and asked for.
    fn start_engine(&self) -> Result<(), SambungError> {
        if !self.config.auto_sync {
            return Ok(());
        }
        let store = self.store()?;
        let Some(enrollment) = store.enrollment()? else {
            return Ok(());
        };
        let mut sync = sync_config(&self.config)?;
        sync.trust = ServerTrust::from(&enrollment);
        sync.metered = self.metered.load(Ordering::Relaxed);
        let http = core_sync::Client::new(&enrollment.server, &sync)?;
        let observers = self.observers.clone();
        let _rt = runtime().enter();
        let engine = SyncEngine::start_with(store, http, sync, EngineConfig::default(), move |s| {
            notify(&observers, s.changed.clone());
        });
        self.state.write().unwrap_or_else(|e| e.into_inner()).engine = Some(engine);
        Ok(())
    }

    /// Runs a store write to request `id` off the caller's thread, then
    /// tells the engine and, on the same worker, the observers.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        id: RequestId,
        f: impl FnOnce(&Store) -> Result<T, sambung_core::Error> + Send + 'static,
    ) -> Result<T, SambungError> {
        self.write_new(move |s| f(s).map(|out| (out, id))).await
    }

    /// Like `write`, for a write that makes the id (a new draft).
    async fn write_new<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<(T, RequestId), sambung_core::Error> + Send + 'static,
    ) -> Result<T, SambungError> {
        let store = self.store()?;
        let observers = self.observers.clone();
        let out = blocking(move || {
            let (out, id) = f(&store)?;
            notify(&observers, vec![id]);
            Ok(out)
        })
        .await?;
        if let Some(engine) = &self.state.read().unwrap_or_else(|e| e.into_inner()).engine {
            engine.local_write();
        }
        Ok(out)
    }

    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, sambung_core::Error> + Send + 'static,
    ) -> Result<T, SambungError> {
        let store = self.store()?;
        blocking(move || f(&store).map_err(SambungError::from)).await
    }
}

#[uniffi::export]
impl Client {
    /// Opens the store in `config.data_dir` with the key from `keys`,
    /// creating it on first use. Wrong key: `WrongKey`; a store from a
    /// newer app: `IncompatibleVersion` (nothing is touched in either case).
    #[uniffi::constructor]
    pub async fn open(
        config: ClientConfig,
        keys: Arc<dyn KeyProvider>,
    ) -> Result<Arc<Client>, SambungError> {
        let dir = PathBuf::from(&config.data_dir);
        sync_config(&config)?; // bad trust settings fail here, not at the first sync
        let role = config.role;
        let d = dir.clone();
        let provider = keys.clone();
        let store = blocking(move || {
            let secret = Secret::from_provider(&Provider(provider))?;
            let store = if Store::exists(&d) {
                Store::open(&d, &secret)?
            } else {
                std::fs::create_dir_all(&d).map_err(sambung_core::Error::from)?;
                Store::init(
                    &d,
                    &secret,
                    Identity {
                        user: "local".into(),
                        role,
                    },
                )?
            };
            Ok(store)
        })
        .await?;
        let client = Arc::new(Client {
            dir,
            config,
            keys: Mutex::new(keys),
            state: RwLock::new(State {
                store: Some(Arc::new(store)),
                engine: None,
            }),
            observers: Arc::new(Mutex::new(HashMap::new())),
            next_observer: AtomicU64::new(1),
            metered: AtomicBool::new(false),
        });
        client.start_engine()?;
        Ok(client)
    }

    /// Enrolls this device with the server at `server_url` using a one-time
    /// code from the agency.
    pub async fn enroll(
        self: Arc<Self>,
        server_url: String,
        code: String,
    ) -> Result<EnrollmentInfo, SambungError> {
        let sync = sync_config(&self.config)?;
        let http = core_sync::Client::new(&server_url, &sync)?;
        // Enrollment changes the store's identity: it needs the store to
        // itself, so a fresh handle does it and replaces the shared one.
        let dir = self.dir.clone();
        let keys = self.key_provider();
        let enrollment = spawn(async move {
            let secret = Secret::from_provider(&Provider(keys))?;
            let mut own = Store::open(&dir, &secret)?;
            let e = http.enroll(&mut own, &code).await?;
            Ok((e, own))
        })
        .await;
        let (e, own) = enrollment?;
        self.state.write().unwrap_or_else(|e| e.into_inner()).store = Some(Arc::new(own));
        self.start_engine()?;
        Ok(EnrollmentInfo {
            server: e.server,
            account: e.account,
            role: e.role,
            regions: e.regions,
        })
    }

    /// This device's enrollment, if it has enrolled.
    pub async fn enrollment(&self) -> Result<Option<EnrollmentInfo>, SambungError> {
        self.read(|s| {
            Ok(s.enrollment()?.map(|e| EnrollmentInfo {
                server: e.server,
                account: e.account,
                role: e.role,
                regions: e.regions,
            }))
        })
        .await
    }

    /// Creates a draft; invalid content is refused with every problem.
    pub async fn create_draft(
        self: Arc<Self>,
        content: RequestContent,
    ) -> Result<RequestId, SambungError> {
        self.write_new(move |s| s.create(content).map(|id| (id.clone(), id)))
            .await
    }

    /// Replaces a draft's content.
    pub async fn update_draft(
        self: Arc<Self>,
        id: RequestId,
        content: RequestContent,
    ) -> Result<(), SambungError> {
        let i = id.clone();
        self.write(id, move |s| s.update_content(&i, content)).await
    }

    /// Submits a draft (validated with its required attachments).
    pub async fn submit(self: Arc<Self>, id: RequestId) -> Result<Status, SambungError> {
        let i = id.clone();
        self.write(id, move |s| s.submit(&i)).await
    }

    /// Withdraws a request, with an optional reason.
    pub async fn withdraw(
        self: Arc<Self>,
        id: RequestId,
        reason: Option<String>,
    ) -> Result<Status, SambungError> {
        let i = id.clone();
        self.write(id, move |s| s.withdraw(&i, reason)).await
    }

    /// The way out for a request the server refused (its summary carries
    /// the reason): discards this phone's changes to it that the server
    /// has not taken, keeping all the server holds; returns the request as
    /// it stood with them, to show or copy from. Refused for a request the
    /// server did not refuse.
    pub async fn discard_refused(self: Arc<Self>, id: RequestId) -> Result<Request, SambungError> {
        let i = id.clone();
        self.write(id, move |s| s.discard_refused(&i)).await
    }

    /// Adds a note; with `answer`, the note answers a `needs_info` question
    /// and the request goes back to review.
    pub async fn add_note(
        self: Arc<Self>,
        id: RequestId,
        text: String,
        answer: bool,
    ) -> Result<Status, SambungError> {
        let i = id.clone();
        self.write(id, move |s| s.add_note(&i, &text, answer)).await
    }

    /// Attaches a file by path (read in chunks, encrypted; the same bytes
    /// are stored once).
    pub async fn attach_file(
        self: Arc<Self>,
        id: RequestId,
        path: String,
        role: AttachmentRole,
        mime: String,
    ) -> Result<AttachmentRef, SambungError> {
        let i = id.clone();
        self.write(id, move |s| {
            let name = std::path::Path::new(&path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "file".into());
            let file = std::fs::File::open(&path)?;
            s.attach(&i, role, &name, &mime, file)
        })
        .await
    }

    /// Attaches bytes (a photo taken in the app).
    pub async fn attach_bytes(
        self: Arc<Self>,
        id: RequestId,
        bytes: Vec<u8>,
        name: String,
        mime: String,
        role: AttachmentRole,
    ) -> Result<AttachmentRef, SambungError> {
        let i = id.clone();
        self.write(id, move |s| {
            s.attach(&i, role, &name, &mime, bytes.as_slice())
        })
        .await
    }

    /// Attaches a photo prepared for the link: turned upright, downscaled
    /// (`settings`, or 1600 px and JPEG quality 75), re-encoded as JPEG
    /// without EXIF or any other metadata (GPS positions stay on the
    /// phone). The original stays on the phone until the request is decided
    /// and the retention days have passed.
    pub async fn attach_photo(
        self: Arc<Self>,
        id: RequestId,
        bytes: Vec<u8>,
        name: String,
        role: AttachmentRole,
        settings: Option<PhotoSettings>,
    ) -> Result<AttachmentRef, SambungError> {
        let i = id.clone();
        self.write(id, move |s| {
            s.attach_photo(&i, role, &name, &bytes, &settings.unwrap_or_default())
        })
        .await
    }

    /// The attachments of a request and where each one's upload stands
    /// (queued, waiting for an unmetered link, n of m bytes sent, done,
    /// refused with the server's reason).
    pub async fn uploads(&self, id: RequestId) -> Result<Vec<AttachmentUpload>, SambungError> {
        self.read(move |s| s.uploads(&id)).await
    }

    /// How many days original photos stay on the phone after their request
    /// is decided (default 30; 0: at the next sync after the decision).
    pub async fn set_original_retention_days(&self, days: u32) -> Result<(), SambungError> {
        self.read(move |s| s.set_original_retention_days(days))
            .await
    }

    /// One request, whole.
    pub async fn get(&self, id: RequestId) -> Result<Request, SambungError> {
        self.read(move |s| s.get(&id)).await
    }

    /// Requests, newest change first.
    pub async fn list(&self, query: ListQuery) -> Result<Vec<Summary>, SambungError> {
        let filter = ListFilter {
            kind: query.kind,
            status: query.status,
            pending_only: query.pending_only,
            limit: query.limit.map(|l| l as usize),
        };
        self.read(move |s| s.list(&filter)).await
    }

    /// Requests with changes the server has not acknowledged.
    pub async fn pending_count(&self) -> Result<u64, SambungError> {
        self.read(|s| s.pending_count().map(|n| n as u64)).await
    }

    /// Syncs now, until nothing is pending; `progress` hears after each
    /// exchange. Cancelling the call (the coroutine, the task) stops it; what
    /// was acknowledged stays acknowledged and the rest goes next time.
    pub async fn sync_now(
        self: Arc<Self>,
        progress: Option<Arc<dyn SyncProgress>>,
    ) -> Result<SyncReport, SambungError> {
        let store = self.store()?;
        let enrollment = store.enrollment()?.ok_or(SambungError::NotEnrolled)?;
        let mut sync = sync_config(&self.config)?;
        sync.trust = ServerTrust::from(&enrollment);
        sync.metered = self.metered.load(Ordering::Relaxed);
        let http = core_sync::Client::new(&enrollment.server, &sync)?;
        let summary = spawn(async move {
            http.sync(&store, &sync, |s| {
                if let Some(p) = &progress {
                    p.on_progress(SyncReport::from(s));
                }
            })
            .await
            .map_err(SambungError::from)
        })
        .await;
        if let Err(SambungError::Revoked { wiped: true }) = &summary {
            let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
            st.engine = None;
            st.store = None;
        }
        let summary = summary?;
        let report = SyncReport::from(&summary);
        let observers = self.observers.clone();
        let changed = report.changed.clone();
        blocking(move || {
            notify(&observers, changed);
            Ok(())
        })
        .await?;
        Ok(report)
    }

    /// An attachment's bytes: from this phone, or downloaded on demand (an
    /// officer opening a resident's photo) in resumable ranges, checked
    /// against its content hash. Never downloaded unless asked for here.
    pub async fn fetch_attachment(
        self: Arc<Self>,
        id: RequestId,
        sha256: String,
    ) -> Result<Vec<u8>, SambungError> {
        let store = self.store()?;
        if let Ok(bytes) = store.attachment_bytes(&sha256) {
            return Ok(bytes);
        }
        let enrollment = store.enrollment()?.ok_or(SambungError::NotEnrolled)?;
        let mut sync = sync_config(&self.config)?;
        sync.trust = ServerTrust::from(&enrollment);
        let http = core_sync::Client::new(&enrollment.server, &sync)?;
        spawn(async move {
            http.fetch_attachment(&store, &id, &sha256, |_, _| {})
                .await
                .map_err(SambungError::from)
        })
        .await
    }

    /// Tells the library the platform's network changed: online or not,
    /// metered or not. Coming back online syncs at once (auto sync).
    pub fn network_changed(&self, online: bool, metered: bool) {
        self.metered.store(metered, Ordering::Relaxed);
        if let Some(engine) = &self.state.read().unwrap_or_else(|e| e.into_inner()).engine {
            engine.network_changed(online, metered);
        }
    }

    /// Observes changes to requests until the subscription is dropped.
    pub fn observe(&self, observer: Arc<dyn RequestObserver>) -> Arc<Subscription> {
        let id = self.next_observer.fetch_add(1, Ordering::Relaxed);
        self.observers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, observer);
        Arc::new(Subscription {
            observers: Arc::downgrade(&self.observers),
            id,
        })
    }

    /// Re-encrypts the store under the key of `new_keys` (crash-safe: either
    /// key works after a crash, never a mix).
    pub async fn rekey(
        self: Arc<Self>,
        new_keys: Arc<dyn KeyProvider>,
    ) -> Result<(), SambungError> {
        let dir = self.dir.clone();
        let old_keys = self.key_provider();
        let provider = new_keys.clone();
        let fresh = blocking(move || {
            let old = Secret::from_provider(&Provider(old_keys))?;
            let new = Secret::from_provider(&Provider(provider))?;
            let mut own = Store::open(&dir, &old)?;
            own.rekey(&new)?;
            Ok(Store::open(&dir, &new)?)
        })
        .await?;
        *self.keys.lock().unwrap_or_else(|e| e.into_inner()) = new_keys;
        {
            let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
            st.engine = None;
            st.store = Some(Arc::new(fresh));
        }
        self.start_engine()
    }

    /// Deletes the store. Refused while changes have not reached the server,
    /// unless `force`. The client is unusable afterwards.
    pub async fn wipe(self: Arc<Self>, force: bool) -> Result<(), SambungError> {
        let taken = {
            let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
            st.engine = None;
            st.store.take()
        };
        let dir = self.dir.clone();
        let keys = self.key_provider();
        let reopened = blocking(move || {
            drop(taken);
            match Store::wipe(&dir, force) {
                Ok(()) => Ok(None),
                // Refused: the store stays, and so does the client.
                Err(refused) => {
                    let secret = Secret::from_provider(&Provider(keys))?;
                    Ok(Some((Store::open(&dir, &secret)?, refused)))
                }
            }
        })
        .await?;
        match reopened {
            None => Ok(()),
            Some((store, refused)) => {
                self.state.write().unwrap_or_else(|e| e.into_inner()).store = Some(Arc::new(store));
                self.start_engine()?;
                Err(refused.into())
            }
        }
    }
}

#[uniffi::export]
impl Subscription {
    /// Stops the observation now (dropping does the same).
    pub fn cancel(&self) {
        if let Some(o) = self.observers.upgrade() {
            o.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
        }
    }
}
