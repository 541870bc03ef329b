/**
 * FHIR `dateTime` from whatever acquisition time the report carries. FHIR requires a time zone whenever a
 * time is given; DICOM times usually have none (TimezoneOffsetFromUTC is rare), and guessing one would shift
 * the result by hours. So a zoneless time keeps only its date, and the local time goes in the note.
 */
export interface FhirDateTime {
  value?: string;
  /** Set when part of the input could not be represented. */
  remark?: string;
}

const FHIR_DATETIME =
  /^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01])(T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d{1,9})?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00)))?)?)?$/;

export function isFhirDateTime(s: string): boolean {
  return FHIR_DATETIME.test(s);
}

export function toFhirDateTime(raw: string | undefined): FhirDateTime {
  if (!raw) return {};
  const s = raw.trim();
  if (isFhirDateTime(s)) return { value: s };
  // ISO date + time without zone.
  const iso = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(:\d{2}(\.\d+)?)?)$/.exec(s);
  if (iso && isFhirDateTime(iso[1])) {
    return { value: iso[1], remark: `acquired at ${iso[2]} scanner local time (no time zone recorded)` };
  }
  // DICOM DT: YYYYMMDD[HHMMSS[.FFFFFF]][&ZZXX]
  const dt = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?)?([+-]\d{4})?$/.exec(s);
  if (dt) {
    const date = `${dt[1]}-${dt[2]}-${dt[3]}`;
    if (!isFhirDateTime(date)) return { remark: `acquisition time "${s}" is not a valid date` };
    if (dt[4] === undefined) return { value: date };
    const time = `${dt[4]}:${dt[5] ?? '00'}:${dt[6] ?? '00'}${dt[7] ?? ''}`;
    if (dt[8]) {
      const withZone = `${date}T${time}${dt[8].slice(0, 3)}:${dt[8].slice(3)}`;
      if (isFhirDateTime(withZone)) return { value: withZone };
    }
    return { value: date, remark: `acquired at ${time} scanner local time (no time zone recorded)` };
  }
  return { remark: `acquisition time "${s}" is not a recognised date` };
}
