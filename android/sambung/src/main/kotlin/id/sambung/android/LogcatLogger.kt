package id.sambung.android

import android.util.Log
import id.sambung.LogLevel
import id.sambung.LogRecord
import id.sambung.Logger

/** The core's log events in logcat, under the tag `Sambung`. */
class LogcatLogger(private val tag: String = "Sambung") : Logger {
    override fun log(record: LogRecord) {
        val text = "${record.target}: ${record.message}"
        when (record.level) {
            LogLevel.TRACE -> Log.v(tag, text)
            LogLevel.DEBUG -> Log.d(tag, text)
            LogLevel.INFO -> Log.i(tag, text)
            LogLevel.WARN -> Log.w(tag, text)
            LogLevel.ERROR -> Log.e(tag, text)
        }
    }
}
