// Words of the console in Indonesian (the default) and English, and times
// in the zone of the request's region (WIB, WITA, WIT).

export type Lang = "id" | "en";

const words = {
  title: { id: "Konsol layanan", en: "Service console" },
  enrollTitle: { id: "Daftarkan peramban ini", en: "Enroll this browser" },
  enrollHelp: {
    id: "Masukkan kode sekali pakai dari administrator (sambung admin enroll). Peramban ini membuat kuncinya sendiri; kunci itu tidak pernah meninggalkan peramban.",
    en: "Enter the one-time code from your administrator (sambung admin enroll). This browser makes its own key; the key never leaves the browser.",
  },
  code: { id: "Kode pendaftaran", en: "Enrollment code" },
  enroll: { id: "Daftarkan", en: "Enroll" },
  signOut: { id: "Keluar", en: "Sign out" },
  signedInAs: { id: "Masuk sebagai", en: "Signed in as" },
  lockedOut: {
    id: "Kunci peramban ini tidak lagi diterima server (dicabut atau bukan akun agensi). Keluar, lalu daftar lagi dengan kode baru.",
    en: "The server no longer accepts this browser's key (revoked, or not an agency account). Sign out, then enroll again with a new code.",
  },
  queue: { id: "Antrean", en: "Queue" },
  agencyOnly: {
    id: "Konsol ini untuk akun agensi. Petugas lapangan dan warga memakai aplikasi di ponsel; minta kode agensi kepada administrator.",
    en: "This console is for agency accounts. Field officers and residents use the phone app; ask the administrator for an agency code.",
  },
  status: { id: "Status", en: "Status" },
  kind: { id: "Jenis", en: "Kind" },
  service: { id: "Bidang", en: "Area" },
  region: { id: "Wilayah", en: "Region" },
  assignee: { id: "Petugas", en: "Assignee" },
  updated: { id: "Diperbarui", en: "Updated" },
  any: { id: "Semua", en: "Any" },
  filter: { id: "Saring", en: "Filter" },
  since: { id: "Berubah sejak", en: "Changed since" },
  definition: { id: "Layanan", en: "Service" },
  submittedFrom: { id: "Diajukan sejak", en: "Submitted from" },
  submittedUntil: { id: "Diajukan sampai", en: "Submitted until" },
  submitted: { id: "Diajukan", en: "Submitted" },
  overdue: { id: "Hanya yang terlambat", en: "Overdue only" },
  late: { id: "terlambat", en: "overdue" },
  exportCsv: { id: "Unduh CSV", en: "Download CSV" },
  more: { id: "Halaman berikutnya", en: "Next page" },
  none: { id: "Tidak ada permohonan.", en: "No requests." },
  loading: { id: "Memuat…", en: "Loading…" },
  back: { id: "Kembali ke antrean", en: "Back to the queue" },
  request: { id: "Permohonan", en: "Request" },
  fields: { id: "Isian", en: "Fields" },
  history: { id: "Riwayat", en: "History" },
  notes: { id: "Catatan", en: "Notes" },
  attachments: { id: "Lampiran", en: "Attachments" },
  noneYet: { id: "Belum ada.", en: "None yet." },
  act: { id: "Tindakan", en: "Actions" },
  moveTo: { id: "Ubah status ke", en: "Move to" },
  reason: { id: "Alasan atau pesan (opsional)", en: "Reason or message (optional)" },
  askHelp: {
    id: "Untuk meminta informasi, tulis pertanyaan lalu pilih “perlu informasi”: pesan sampai ke ponsel pemohon.",
    en: "To ask for information, write the question then choose “needs info”: it reaches the applicant's phone.",
  },
  addNote: { id: "Tambah catatan", en: "Add a note" },
  noteText: { id: "Catatan", en: "Note" },
  assign: { id: "Tugaskan", en: "Assign" },
  officer: { id: "Petugas lapangan di wilayah ini", en: "Field officer of this region" },
  unassign: { id: "— tanpa petugas —", en: "— nobody —" },
  done: { id: "Tersimpan.", en: "Saved." },
  stale: {
    id: "Permohonan ini berubah sejak Anda membukanya; tidak ada yang ditimpa. Periksa perubahan di bawah, lalu ulangi bila masih perlu.",
    en: "This request changed since you opened it; nothing was overwritten. Check what changed below, then act again if still needed.",
  },
  changed: { id: "Yang berubah", en: "What changed" },
  by: { id: "oleh", en: "by" },
  open: { id: "Unduh", en: "Download" },
  language: { id: "English", en: "Bahasa Indonesia" },
  map: { id: "Peta", en: "Map" },
  admin: { id: "Administrasi", en: "Administration" },
  wholeOnly: {
    id: "Hanya untuk akun agensi tanpa batas wilayah (pejabat pelindungan data).",
    en: "Only for an agency account without region limits (the data protection officer).",
  },
  keys: { id: "Kunci terdaftar", en: "Enrolled keys" },
  keysHelp: {
    id: "Ponsel, sistem agensi, dan peramban konsol. Cabut kunci ponsel yang hilang atau peramban pegawai yang sudah pergi: server menolaknya sejak panggilan berikutnya.",
    en: "Phones, agency systems and console browsers. Revoke a lost phone's key or a departed clerk's browser: the server refuses it from its next call.",
  },
  key: { id: "Kunci", en: "Key" },
  account: { id: "Akun", en: "Account" },
  role: { id: "Peran", en: "Role" },
  enrolled: { id: "Terdaftar", en: "Enrolled" },
  state: { id: "Keadaan", en: "State" },
  revoke: { id: "Cabut", en: "Revoke" },
  thisBrowser: { id: "peramban ini", en: "this browser" },
  revokeWipe: { id: "Cabut dan hapus isi", en: "Revoke and wipe" },
  revokedAt: { id: "Dicabut", en: "Revoked" },
  revokeConfirm: { id: "Cabut kunci ini?", en: "Revoke this key?" },
  wipeConfirm: {
    id: "Cabut kunci ini dan minta perangkat menghapus isinya (setelah mengirim yang belum terkirim)?",
    en: "Revoke this key and have the device delete its store (after sending what it has not sent)?",
  },
  webhooks: { id: "Webhook", en: "Webhooks" },
  webhooksHelp: {
    id: "Sistem agensi diberi tahu saat permohonan berubah. Rahasia penanda tangan hanya ditampilkan sekali.",
    en: "An agency system is told when requests change. The signing secret is shown once.",
  },
  secretOnce: { id: "Rahasia (simpan sekarang, tidak ditampilkan lagi):", en: "Secret (keep it now; it is not shown again):" },
  address: { id: "Alamat (https)", en: "Address (https)" },
  events: { id: "Peristiwa", en: "Events" },
  subscribe: { id: "Langganan", en: "Subscribe" },
  delivered: { id: "terkirim", en: "delivered" },
  pending: { id: "menunggu", en: "pending" },
  failedDeliveries: { id: "gagal", en: "failed" },
  lastError: { id: "galat terakhir", en: "last error" },
  remove: { id: "Hapus", en: "Remove" },
  person: { id: "Data pribadi seseorang (UU PDP)", en: "A person's data (UU PDP)" },
  personHelp: {
    id: "Salinan semua yang disimpan server tentang seseorang, atau penghapusan datanya dari setiap permohonan. Keduanya tercatat di jejak audit.",
    en: "A copy of everything the server holds about a person, or the erasure of their data from every request. Both are in the audit trail.",
  },
  exportPerson: { id: "Unduh salinan", en: "Download a copy" },
  erasePerson: { id: "Hapus data", en: "Erase data" },
  eraseConfirm: { id: "Ketik NIK sekali lagi untuk menghapus datanya:", en: "Type the NIK again to erase their data:" },
  exported: { id: "Diunduh", en: "Downloaded" },
  erased: { id: "Dihapus", en: "Erased" },
  alreadyErased: { id: "sudah dihapus sebelumnya", en: "already erased" },
  yes: { id: "Ya", en: "Yes" },
  no: { id: "Tidak", en: "No" },
  trail: { id: "Jejak: penerimaan dan audit", en: "Trail: receipts and audit" },
  receipts: { id: "Siapa mengirim tiap perubahan", en: "Who delivered each change" },
  audit: { id: "Jejak audit permohonan ini", en: "This request's audit trail" },
  auditWhole: {
    id: "Jejak audit hanya untuk akun agensi tanpa batas wilayah (pejabat pelindungan data).",
    en: "The audit trail is for an agency account without region limits (the data protection officer).",
  },
  onMap: { id: "Permohonan berlokasi di peta", en: "Requests with a place on the map" },
  narrow: { id: "hanya 2.000 pertama: persempit saringan", en: "the first 2,000 only: narrow the filters" },
  wholeView: { id: "Tampilkan semua", en: "Show all" },
  requests: { id: "permohonan", en: "requests" },
  zoomIn: { id: "perbesar", en: "zoom in" },
  coastNote: {
    id: "Garis pantai: Natural Earth 1:10 juta (domain publik). Batas wilayah: dari berkas yang dipasang penyelenggara (--console-boundaries), bila ada.",
    en: "Coastline: Natural Earth 1:10 million (public domain). Region outline: from the file the deployment installed (--console-boundaries), if any.",
  },
} as const satisfies Record<string, Record<Lang, string>>;

export type Word = keyof typeof words;

const statuses: Record<string, Record<Lang, string>> = {
  draft: { id: "draf", en: "draft" },
  submitted: { id: "diajukan", en: "submitted" },
  received: { id: "diterima", en: "received" },
  in_review: { id: "diperiksa", en: "in review" },
  needs_info: { id: "perlu informasi", en: "needs info" },
  approved: { id: "disetujui", en: "approved" },
  rejected: { id: "ditolak", en: "rejected" },
  completed: { id: "selesai", en: "completed" },
  withdrawn: { id: "ditarik", en: "withdrawn" },
};

/** The lifecycle's statuses, in its order (docs/requests.md). */
export const STATUSES = Object.keys(statuses);

/** Field names of today's kinds made readable (until the catalog's labels reach the console). */
const labels: Record<string, Record<Lang, string>> = {
  region: { id: "Wilayah", en: "Region" },
  lawful_basis: { id: "Dasar hukum pemrosesan", en: "Lawful basis" },
  applicant: { id: "Pemohon", en: "Applicant" },
  nik: { id: "NIK", en: "NIK" },
  name: { id: "Nama", en: "Name" },
  birth_date: { id: "Tanggal lahir", en: "Date of birth" },
  sex: { id: "Jenis kelamin", en: "Sex" },
  contact_phone: { id: "Telepon", en: "Phone" },
  details: { id: "Rincian", en: "Details" },
  kind: { id: "Jenis", en: "Kind" },
  category: { id: "Kategori", en: "Category" },
  text: { id: "Uraian", en: "Description" },
  location: { id: "Lokasi", en: "Location" },
  lat: { id: "Lintang", en: "Latitude" },
  lon: { id: "Bujur", en: "Longitude" },
  accuracy_m: { id: "Akurasi (m)", en: "Accuracy (m)" },
  occurred_on: { id: "Tanggal kejadian", en: "Occurred on" },
  anonymous: { id: "Anonim", en: "Anonymous" },
  address: { id: "Alamat", en: "Address" },
  service: { id: "Layanan katalog", en: "Catalog service" },
  permit: { id: "Perizinan", en: "Permits" },
  population: { id: "Kependudukan", en: "Population registry" },
  tax: { id: "Pajak", en: "Tax" },
  complaint: { id: "Pengaduan", en: "Complaint" },
  catalog: { id: "Layanan katalog", en: "Catalog services" },
  answers: { id: "Jawaban", en: "Answers" },
};

/** Coded values of today's content (sex, lawful basis) in words. */
const values: Record<string, Record<Lang, string>> = {
  female: { id: "Perempuan", en: "Female" },
  male: { id: "Laki-laki", en: "Male" },
  public_service: { id: "Pelaksanaan tugas pelayanan publik", en: "Public service task" },
  legal_obligation: { id: "Kewajiban hukum", en: "Legal obligation" },
  consent: { id: "Persetujuan", en: "Consent" },
};

export class I18n {
  constructor(readonly lang: Lang) {}

  t(w: Word): string {
    return words[w][this.lang];
  }

  status(s: string): string {
    return statuses[s]?.[this.lang] ?? s;
  }

  /** A field's label: a known name's words, else the name made readable. */
  label(key: string): string {
    const known = labels[key]?.[this.lang];
    if (known) return known;
    const plain = key.replace(/_/g, " ");
    return plain.charAt(0).toUpperCase() + plain.slice(1);
  }

  /** A coded value in words, when it is one of the known codes. */
  value(v: string): string {
    return values[v]?.[this.lang] ?? v;
  }

  /** A moment in the zone of `region` (WIB by default), with its name. */
  time(ms: number, region?: string): string {
    const [tz, name] = zoneOf(region);
    const s = new Intl.DateTimeFormat(this.lang === "id" ? "id-ID" : "en-GB", {
      dateStyle: "medium",
      timeStyle: "short",
      timeZone: tz,
    }).format(new Date(ms));
    return `${s} ${name}`;
  }
}

/** Indonesia's three zones by province code (the region's first segment). */
export function zoneOf(region?: string): [string, string] {
  const province = Number((region ?? "").slice(0, 2));
  // Bali, Nusa Tenggara, South/East/North Kalimantan, Sulawesi: UTC+8.
  if ([51, 52, 53, 63, 64, 65, 71, 72, 73, 74, 75, 76].includes(province)) return ["Asia/Makassar", "WITA"];
  // Maluku and Papua: UTC+9.
  if ([81, 82].includes(province) || (province >= 91 && province <= 97)) return ["Asia/Jayapura", "WIT"];
  return ["Asia/Jakarta", "WIB"];
}
