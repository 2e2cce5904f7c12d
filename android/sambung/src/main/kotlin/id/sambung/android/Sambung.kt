package id.sambung.android

import android.content.Context
import id.sambung.Client
import id.sambung.ClientConfig
import id.sambung.LogLevel
import id.sambung.model.Role
import id.sambung.setLogger
import java.io.File
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock

/**
 * The app's one client, opened once per process with the Keystore-backed
 * key, the agency's CA, logcat logging, network callbacks and background
 * sync.
 *
 * ```kotlin
 * Sambung.init(Role.RESIDENT, caPem = resources.openRawResource(R.raw.agency_ca).reader().readText())
 * val client = Sambung.client(context)          // suspend; off the main thread inside
 * val id = client.createDraft(template(Kind.COMPLAINT).copy(region = "32.73.01.1001"))
 * ```
 */
object Sambung {
    private val mutex = Mutex()
    private var client: Client? = null
    private var watcher: NetworkWatcher? = null
    private var role: Role = Role.RESIDENT
    private var caPem: String? = null
    private var pins: List<String> = emptyList()

    /** Sets how the client is opened (call in `Application.onCreate`). */
    fun init(role: Role, caPem: String?, pins: List<String> = emptyList()) {
        this.role = role
        this.caPem = caPem
        this.pins = pins
        setLogger(LogcatLogger(), LogLevel.INFO)
    }

    /** The client, opened on first use. */
    suspend fun client(context: Context): Client = mutex.withLock {
        client ?: Client.open(
            ClientConfig(
                dataDir = File(context.noBackupFilesDir, "sambung").path,
                role = role,
                caPem = caPem,
                pins = pins,
                budgetBytes = null,
                autoSync = true,
            ),
            KeystoreKeyProvider(context.applicationContext),
        ).also { opened ->
            client = opened
            watcher = NetworkWatcher(context.applicationContext, opened).apply { start() }
            SyncWorker.schedule(context.applicationContext)
        }
    }
}
