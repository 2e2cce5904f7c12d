//! Field validation results: every violated field, with a machine-readable
//! code and a plain message in Indonesian and English. Messages never repeat
//! the value that failed, so a report can be logged or shown without leaking
//! personal data.

use serde::Serialize;
use std::fmt;

/// What is wrong with a field. The `snake_case` name is the stable,
/// machine-readable code that apps switch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Code {
    Required,
    TooLong,
    NikFormat,
    NikProvince,
    NikBirthDate,
    NikSerial,
    NikMismatch,
    NikSex,
    AnonymousIdentity,
    KkFormat,
    KkProvince,
    NopFormat,
    NopProvince,
    NopSpecialCode,
    NibFormat,
    KbliFormat,
    RegionFormat,
    RegionProvince,
    RegionLevel,
    PhoneFormat,
    PlateFormat,
    DateFormat,
    DateInFuture,
    TimeFormat,
    TaxYear,
    Latitude,
    Longitude,
    Accuracy,
    OutsideIndonesia,
    Amount,
    Percentage,
    Count,
    PostalCode,
    Duplicate,
    OneOfRequired,
    ConsentMissing,
    AttachmentMissing,
    LateReport,
    WrongType,
    NotAnOption,
    NotACode,
    OutOfRange,
    EmailFormat,
    NpwpFormat,
    UnknownField,
    UnknownService,
    DefinitionMismatch,
    ServiceRetired,
}

impl Code {
    /// The stable code string, e.g. `nik_province`.
    pub fn as_str(self) -> &'static str {
        use Code::*;
        match self {
            Required => "required",
            TooLong => "too_long",
            NikFormat => "nik_format",
            NikProvince => "nik_province",
            NikBirthDate => "nik_birth_date",
            NikSerial => "nik_serial",
            NikMismatch => "nik_mismatch",
            NikSex => "nik_sex",
            AnonymousIdentity => "anonymous_identity",
            KkFormat => "kk_format",
            KkProvince => "kk_province",
            NopFormat => "nop_format",
            NopProvince => "nop_province",
            NopSpecialCode => "nop_special_code",
            NibFormat => "nib_format",
            KbliFormat => "kbli_format",
            RegionFormat => "region_format",
            RegionProvince => "region_province",
            RegionLevel => "region_level",
            PhoneFormat => "phone_format",
            PlateFormat => "plate_format",
            DateFormat => "date_format",
            DateInFuture => "date_in_future",
            TimeFormat => "time_format",
            TaxYear => "tax_year",
            Latitude => "latitude",
            Longitude => "longitude",
            Accuracy => "accuracy",
            OutsideIndonesia => "outside_indonesia",
            Amount => "amount",
            Percentage => "percentage",
            Count => "count",
            PostalCode => "postal_code",
            Duplicate => "duplicate",
            OneOfRequired => "one_of_required",
            ConsentMissing => "consent_missing",
            AttachmentMissing => "attachment_missing",
            LateReport => "late_report",
            WrongType => "wrong_type",
            NotAnOption => "not_an_option",
            NotACode => "not_a_code",
            OutOfRange => "out_of_range",
            EmailFormat => "email_format",
            NpwpFormat => "npwp_format",
            UnknownField => "unknown_field",
            UnknownService => "unknown_service",
            DefinitionMismatch => "definition_mismatch",
            ServiceRetired => "service_retired",
        }
    }

    /// The plain message: (English, Indonesian).
    pub fn messages(self) -> (&'static str, &'static str) {
        use Code::*;
        match self {
            Required => ("This field is required.", "Kolom ini wajib diisi."),
            TooLong => ("This text is too long.", "Teks ini terlalu panjang."),
            NikFormat => (
                "A NIK has exactly 16 digits.",
                "NIK harus terdiri dari tepat 16 angka.",
            ),
            NikProvince => (
                "The NIK does not start with a real province code.",
                "NIK tidak diawali kode provinsi yang berlaku.",
            ),
            NikBirthDate => (
                "Digits 7–12 of the NIK are not a real date of birth.",
                "Angka ke-7 sampai ke-12 NIK bukan tanggal lahir yang sah.",
            ),
            NikSerial => (
                "The last four digits of a NIK cannot be 0000.",
                "Empat angka terakhir NIK tidak boleh 0000.",
            ),
            NikMismatch => (
                "The NIK does not match the stated date of birth and sex.",
                "NIK tidak sesuai dengan tanggal lahir dan jenis kelamin yang diisi.",
            ),
            NikSex => (
                "The NIK encodes the other sex (women have 40 added to the day of birth).",
                "NIK menunjukkan jenis kelamin yang lain (tanggal lahir perempuan ditambah 40).",
            ),
            AnonymousIdentity => (
                "An anonymous complaint carries no applicant or contact phone.",
                "Pengaduan anonim tidak boleh memuat data pelapor atau nomor telepon.",
            ),
            KkFormat => (
                "A family card (KK) number has exactly 16 digits.",
                "Nomor Kartu Keluarga (KK) harus terdiri dari tepat 16 angka.",
            ),
            KkProvince => (
                "The KK number does not start with a real province code.",
                "Nomor KK tidak diawali kode provinsi yang berlaku.",
            ),
            NopFormat => (
                "A tax object number (NOP) has 18 digits, e.g. 32.73.010.001.001-0001.0.",
                "Nomor Objek Pajak (NOP) terdiri dari 18 angka, mis. 32.73.010.001.001-0001.0.",
            ),
            NopProvince => (
                "The NOP does not start with a real province code.",
                "NOP tidak diawali kode provinsi yang berlaku.",
            ),
            NopSpecialCode => (
                "The last digit of the NOP must be 0, 7 or 9.",
                "Angka terakhir NOP harus 0, 7, atau 9.",
            ),
            NibFormat => (
                "A business identification number (NIB) has exactly 13 digits.",
                "Nomor Induk Berusaha (NIB) harus terdiri dari tepat 13 angka.",
            ),
            KbliFormat => (
                "A KBLI code has exactly 5 digits.",
                "Kode KBLI harus terdiri dari tepat 5 angka.",
            ),
            RegionFormat => (
                "A region code looks like 32, 32.73, 32.73.01 or 32.73.01.1001.",
                "Kode wilayah berbentuk 32, 32.73, 32.73.01, atau 32.73.01.1001.",
            ),
            RegionProvince => (
                "The region code does not start with a real province code.",
                "Kode wilayah tidak diawali kode provinsi yang berlaku.",
            ),
            RegionLevel => (
                "This region code must name a village (desa/kelurahan), e.g. 32.73.01.1001.",
                "Kode wilayah ini harus sampai tingkat desa/kelurahan, mis. 32.73.01.1001.",
            ),
            PhoneFormat => (
                "A phone number starts with +62 or 0 followed by 9–13 digits.",
                "Nomor telepon diawali +62 atau 0 lalu 9–13 angka.",
            ),
            PlateFormat => (
                "A vehicle plate looks like B 1234 XYZ.",
                "Nomor polisi kendaraan berbentuk seperti B 1234 XYZ.",
            ),
            DateFormat => (
                "A date is written YYYY-MM-DD and must exist in the calendar.",
                "Tanggal ditulis TTTT-BB-HH dan harus ada di kalender.",
            ),
            DateInFuture => (
                "This date cannot be in the future.",
                "Tanggal ini tidak boleh di masa depan.",
            ),
            TimeFormat => (
                "A time is written HH:MM (24-hour clock).",
                "Waktu ditulis JJ:MM (format 24 jam).",
            ),
            TaxYear => (
                "The tax year must be between 1990 and the current year.",
                "Tahun pajak harus antara 1990 dan tahun berjalan.",
            ),
            Latitude => (
                "Latitude must be a number between -90 and 90.",
                "Lintang harus berupa angka antara -90 dan 90.",
            ),
            Longitude => (
                "Longitude must be a number between -180 and 180.",
                "Bujur harus berupa angka antara -180 dan 180.",
            ),
            Accuracy => (
                "Location accuracy must be a positive number of metres.",
                "Akurasi lokasi harus berupa angka meter yang positif.",
            ),
            OutsideIndonesia => (
                "This location lies outside Indonesia; check it if that is not intended.",
                "Lokasi ini berada di luar Indonesia; periksa kembali bila tidak disengaja.",
            ),
            Amount => (
                "The amount must be greater than zero.",
                "Jumlah harus lebih dari nol.",
            ),
            Percentage => (
                "The percentage must be between 1 and 100.",
                "Persentase harus antara 1 dan 100.",
            ),
            Count => (
                "The number of entries is not allowed here.",
                "Jumlah isian tidak sesuai ketentuan.",
            ),
            PostalCode => (
                "A postal code has exactly 5 digits.",
                "Kode pos harus terdiri dari tepat 5 angka.",
            ),
            Duplicate => (
                "The same entry appears twice.",
                "Isian yang sama muncul dua kali.",
            ),
            OneOfRequired => (
                "Fill in at least one of these fields.",
                "Isi setidaknya salah satu dari kolom ini.",
            ),
            ConsentMissing => (
                "Consent is the stated lawful basis, so a consent record is required.",
                "Dasar pemrosesan adalah persetujuan, maka catatan persetujuan wajib ada.",
            ),
            AttachmentMissing => (
                "A required document is not attached.",
                "Dokumen yang wajib belum dilampirkan.",
            ),
            LateReport => (
                "A death is to be reported within 30 days; a late report may incur a fine.",
                "Kematian wajib dilaporkan dalam 30 hari; laporan terlambat dapat dikenai denda.",
            ),
            WrongType => (
                "This answer is not of the kind the field takes.",
                "Jawaban ini tidak sesuai dengan jenis isian.",
            ),
            NotAnOption => (
                "This is not one of the choices.",
                "Ini bukan salah satu pilihan yang tersedia.",
            ),
            NotACode => (
                "This code is not in the list it is chosen from.",
                "Kode ini tidak ada dalam daftar pilihannya.",
            ),
            OutOfRange => (
                "This number is outside the allowed range.",
                "Angka ini di luar rentang yang diperbolehkan.",
            ),
            EmailFormat => (
                "This is not an e-mail address.",
                "Ini bukan alamat surel yang sah.",
            ),
            NpwpFormat => (
                "An NPWP has 15 or 16 digits.",
                "NPWP harus terdiri dari 15 atau 16 angka.",
            ),
            UnknownField => (
                "This form has no such field.",
                "Formulir ini tidak memiliki isian tersebut.",
            ),
            UnknownService => (
                "This service (or this version of it) is not known here: sync to receive it, or update the app.",
                "Layanan ini (atau versi ini) belum dikenal: lakukan sinkronisasi untuk menerimanya, atau perbarui aplikasi.",
            ),
            DefinitionMismatch => (
                "The form this request was filled in does not match the published version of the service.",
                "Formulir yang diisi tidak sama dengan versi layanan yang diterbitkan.",
            ),
            ServiceRetired => (
                "This version of the service was retired and no longer accepts requests; start again on the current version.",
                "Versi layanan ini sudah dihentikan dan tidak lagi menerima permohonan; ajukan ulang dengan versi terbaru.",
            ),
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldIssue {
    /// Path of the field in the JSON form, e.g. `details.mother_nik` or
    /// `details.witnesses[1].nik`.
    pub field: String,
    /// Machine-readable code.
    pub code: Code,
    /// Plain English message.
    pub message_en: &'static str,
    /// Plain Indonesian message.
    pub message_id: &'static str,
}

impl FieldIssue {
    /// An issue of `code` at `field`, with the code's messages.
    pub fn new(field: impl Into<String>, code: Code) -> Self {
        let (en, id) = code.messages();
        FieldIssue {
            field: field.into(),
            code,
            message_en: en,
            message_id: id,
        }
    }
}

impl fmt::Display for FieldIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} — {} / {}",
            self.field, self.code, self.message_en, self.message_id
        )
    }
}

/// All errors and warnings found in one request. Errors block saving;
/// warnings are shown but never block (domain.md: never reject a real
/// citizen's data on a guess).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ValidationReport {
    /// Problems that block the action.
    pub errors: Vec<FieldIssue>,
    /// Problems to show that do not block.
    pub warnings: Vec<FieldIssue>,
}

impl ValidationReport {
    /// True when there is no error (warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// The codes of the errors at `field`, for tests and apps.
    pub fn codes_at(&self, field: &str) -> Vec<Code> {
        self.errors
            .iter()
            .filter(|e| e.field == field)
            .map(|e| e.code)
            .collect()
    }
}

impl fmt::Display for ValidationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} invalid field(s)", self.errors.len())?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// Collects issues while walking a request; keeps the path of the field
/// being checked.
pub struct Validator {
    path: Vec<String>,
    report: ValidationReport,
    /// Today in Indonesia, for "not in the future" checks.
    pub today: crate::time::CivilDate,
}

impl Validator {
    /// A validator that judges dates against `today`.
    pub fn new(today: crate::time::CivilDate) -> Self {
        Validator {
            path: Vec::new(),
            report: ValidationReport::default(),
            today,
        }
    }

    /// Runs `f` with `segment` appended to the current path.
    pub fn at<R>(&mut self, segment: &str, f: impl FnOnce(&mut Self) -> R) -> R {
        self.path.push(segment.to_owned());
        let r = f(self);
        self.path.pop();
        r
    }

    /// Runs `f` for element `index` of the list at the current path.
    pub fn at_index<R>(&mut self, index: usize, f: impl FnOnce(&mut Self) -> R) -> R {
        let last = self.path.pop().unwrap_or_default();
        self.path.push(format!("{last}[{index}]"));
        let r = f(self);
        self.path.pop();
        self.path.push(last);
        r
    }

    fn here(&self, field: Option<&str>) -> String {
        let mut p = self.path.join(".");
        if let Some(f) = field {
            if !p.is_empty() {
                p.push('.');
            }
            p.push_str(f);
        }
        p
    }

    /// Records an error at the current path.
    pub fn error(&mut self, code: Code) {
        let f = self.here(None);
        self.report.errors.push(FieldIssue::new(f, code));
    }

    /// Records an error at `field` under the current path.
    pub fn error_at(&mut self, field: &str, code: Code) {
        let f = self.here(Some(field));
        self.report.errors.push(FieldIssue::new(f, code));
    }

    /// Records a warning at the current path.
    pub fn warn(&mut self, code: Code) {
        let f = self.here(None);
        self.report.warnings.push(FieldIssue::new(f, code));
    }

    /// Records a warning at `field` under the current path.
    pub fn warn_at(&mut self, field: &str, code: Code) {
        let f = self.here(Some(field));
        self.report.warnings.push(FieldIssue::new(f, code));
    }

    /// Records every code of `codes` as an error at `field`.
    pub fn errors_at(&mut self, field: &str, codes: impl IntoIterator<Item = Code>) {
        for c in codes {
            self.error_at(field, c);
        }
    }

    /// Non-empty text of at most `max` characters at `field`.
    pub fn text(&mut self, field: &str, value: &str, max: usize) {
        if value.trim().is_empty() {
            self.error_at(field, Code::Required);
        } else if value.chars().count() > max {
            self.error_at(field, Code::TooLong);
        }
    }

    /// Optional text: when present, at most `max` characters and not blank.
    pub fn opt_text(&mut self, field: &str, value: Option<&str>, max: usize) {
        if let Some(v) = value {
            self.text(field, v, max);
        }
    }

    /// A date at `field` that must be real and not after today.
    pub fn past_date(
        &mut self,
        field: &str,
        date: &crate::time::Date,
    ) -> Option<crate::time::CivilDate> {
        match date.civil() {
            None => {
                self.error_at(field, Code::DateFormat);
                None
            }
            Some(d) if d > self.today => {
                self.error_at(field, Code::DateInFuture);
                None
            }
            Some(d) => Some(d),
        }
    }

    /// A tax year between 1990 and the current year.
    pub fn tax_year(&mut self, field: &str, year: u32) {
        if year < 1990 || i64::from(year) > i64::from(self.today.year) {
            self.error_at(field, Code::TaxYear);
        }
    }

    /// An amount in rupiah that must be positive.
    pub fn amount(&mut self, field: &str, idr: u64) {
        if idr == 0 {
            self.error_at(field, Code::Amount);
        }
    }

    /// The report so far.
    pub fn finish(self) -> ValidationReport {
        self.report
    }
}
