package id.sambung.android

import android.content.Context
import androidx.work.BackoffPolicy
import androidx.work.Constraints
import androidx.work.CoroutineWorker
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.NetworkType
import androidx.work.PeriodicWorkRequestBuilder
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import id.sambung.SambungException
import java.util.concurrent.TimeUnit

/**
 * Background sync when the app is not open: WorkManager runs it only with a
 * network, and retries with its own exponential backoff when the failure
 * may pass. The app registers how to get its client with [Sambung.init].
 */
class SyncWorker(context: Context, params: WorkerParameters) : CoroutineWorker(context, params) {
    override suspend fun doWork(): Result = try {
        Sambung.client(applicationContext).syncNow(null)
        Result.success()
    } catch (e: SambungException.Network) {
        if (e.retryable) Result.retry() else Result.failure()
    } catch (e: SambungException.NotEnrolled) {
        Result.success() // nothing to do until the user enrolls
    } catch (e: SambungException) {
        Result.failure()
    }

    companion object {
        private const val NAME = "sambung-sync"

        /** Schedules a sync every [hours] hours, only when a network is there. */
        fun schedule(context: Context, hours: Long = 6) {
            val request = PeriodicWorkRequestBuilder<SyncWorker>(hours, TimeUnit.HOURS)
                .setConstraints(Constraints.Builder().setRequiredNetworkType(NetworkType.CONNECTED).build())
                .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, 30, TimeUnit.SECONDS)
                .build()
            WorkManager.getInstance(context)
                .enqueueUniquePeriodicWork(NAME, ExistingPeriodicWorkPolicy.KEEP, request)
        }
    }
}
