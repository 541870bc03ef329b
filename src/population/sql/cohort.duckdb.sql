-- vbmd cohort as SQL over a Bulk Data export (Observation.ndjson, MedicationRequest.ndjson,
-- MedicationStatement.ndjson in the current folder), for DuckDB >= 1.1. Same definitions as `vbmd cohort`
-- (src/population/README.md): latest measured summary vBMD per patient, ACR category, least-squares trend
-- in %/year of the fitted value at the first scan (>= 2 scans over >= 0.5 year of 365.25 days), active
-- bone-targeted therapy. Checked against the cohort's known-answer fixture (README "SQL").
-- Set the parameters here:
SET VARIABLE as_of = TIMESTAMPTZ '2025-06-01 00:00:00+00';
SET VARIABLE since = TIMESTAMPTZ '1900-01-01 00:00:00+00';   -- inclusive
SET VARIABLE until = TIMESTAMPTZ '2999-01-01 00:00:00+00';   -- exclusive

-- 1. The vbmd_observation ViewDefinition (view-definitions/vbmd-observation.json) in SQL.
CREATE OR REPLACE VIEW vbmd_observation AS
SELECT
  id,
  regexp_extract(subject.reference, '(?:^|/)Patient/([^/]+)(?:/_history/[^/]+)?$', 1) AS patient_id,
  effectiveDateTime AS effective_date_time,
  TRY_CAST(effectiveDateTime AS TIMESTAMPTZ) AS effective_ts,
  status,
  valueQuantity.value AS value_mg_cm3,
  coalesce(valueQuantity.code, valueQuantity.unit) AS unit,
  dataAbsentReason IS NOT NULL AS data_absent,
  list_filter(method.coding, c -> c.system = 'https://vbmd.org/fhir/CodeSystem/vbmd')[1].code AS basis,
  list_filter(partOf, r -> r.identifier.system = 'urn:dicom:uid')[1].identifier.value AS study_uid
FROM read_json_auto('Observation.ndjson', format = 'newline_delimited', sample_size = -1)
WHERE resourceType = 'Observation'
  AND len(list_filter(code.coding, c -> c.system = 'https://vbmd.org/fhir/CodeSystem/vbmd' AND c.code = 'vbmd-trabecular-qct')) > 0;

-- 2. Scans the cohort counts: real results, in the window, with a time.
CREATE OR REPLACE TEMP VIEW scans AS
SELECT *,
  CASE WHEN data_absent OR value_mg_cm3 IS NULL THEN 'indeterminate'
       WHEN value_mg_cm3 > 120 THEN 'normal' WHEN value_mg_cm3 >= 80 THEN 'osteopenia' ELSE 'osteoporosis' END AS category,
  epoch(effective_ts) / (365.25 * 86400) AS t_years
FROM vbmd_observation
WHERE status NOT IN ('entered-in-error', 'registered', 'cancelled', 'unknown')
  AND patient_id IS NOT NULL AND effective_ts IS NOT NULL
  AND (data_absent OR value_mg_cm3 IS NULL OR unit IN ('mg/cm3', 'mg/mL', 'mg/ml'))
  AND effective_ts >= getvariable('since') AND effective_ts < getvariable('until');

-- 3. Per patient: latest measured value (ties: the lower value), counts, trend.
CREATE OR REPLACE TEMP VIEW per_patient AS
WITH measured AS (
  SELECT * FROM scans WHERE category <> 'indeterminate'
), latest AS (
  SELECT * FROM (
    SELECT *, row_number() OVER (PARTITION BY patient_id ORDER BY effective_ts DESC, value_mg_cm3 ASC) AS rn FROM measured
  ) WHERE rn = 1
), fit AS (
  SELECT patient_id, count(*) AS measured_scans,
    regr_slope(value_mg_cm3, t_years) AS slope, regr_intercept(value_mg_cm3, t_years) AS intercept,
    min(t_years) AS t0, max(t_years) - min(t_years) AS span_years
  FROM measured GROUP BY patient_id
), counts AS (
  SELECT patient_id, count(*) AS scans, arg_max(category = 'indeterminate', effective_ts) AS newest_is_indeterminate FROM scans GROUP BY patient_id
)
SELECT c.patient_id, l.effective_date_time AS latest_date, l.value_mg_cm3 AS vbmd_mg_cm3,
  coalesce(l.category, 'indeterminate') AS category, l.basis, c.scans, coalesce(f.measured_scans, 0) AS measured_scans,
  CASE WHEN f.measured_scans >= 2 AND f.span_years >= 0.5 AND f.intercept + f.slope * f.t0 > 0
       THEN 100 * f.slope / (f.intercept + f.slope * f.t0) END AS trend_pct_per_year
FROM counts c LEFT JOIN latest l USING (patient_id) LEFT JOIN fit f USING (patient_id);

-- 4. Bone-targeted therapy value set (bone-therapy-value-set.json): codes, and names matched in display/text.
CREATE OR REPLACE TEMP TABLE therapy_code(system VARCHAR, code VARCHAR, ingredient VARCHAR);
INSERT INTO therapy_code VALUES
  ('http://www.nlm.nih.gov/research/umls/rxnorm', '46041', 'alendronate'), ('http://www.nlm.nih.gov/research/umls/rxnorm', '73056', 'risedronate'),
  ('http://www.nlm.nih.gov/research/umls/rxnorm', '115264', 'ibandronate'), ('http://www.nlm.nih.gov/research/umls/rxnorm', '77655', 'zoledronic acid'),
  ('http://www.nlm.nih.gov/research/umls/rxnorm', '11473', 'pamidronate'), ('http://www.nlm.nih.gov/research/umls/rxnorm', '993449', 'denosumab'),
  ('http://www.nlm.nih.gov/research/umls/rxnorm', '110634', 'teriparatide'),
  ('http://www.whocc.no/atc', 'M05BA04', 'alendronate'), ('http://www.whocc.no/atc', 'M05BB03', 'alendronate'), ('http://www.whocc.no/atc', 'M05BB05', 'alendronate'),
  ('http://www.whocc.no/atc', 'M05BA07', 'risedronate'), ('http://www.whocc.no/atc', 'M05BB02', 'risedronate'), ('http://www.whocc.no/atc', 'M05BB04', 'risedronate'),
  ('http://www.whocc.no/atc', 'M05BB07', 'risedronate'), ('http://www.whocc.no/atc', 'M05BA06', 'ibandronate'), ('http://www.whocc.no/atc', 'M05BA08', 'zoledronic acid'),
  ('http://www.whocc.no/atc', 'M05BA03', 'pamidronate'), ('http://www.whocc.no/atc', 'M05BX04', 'denosumab'), ('http://www.whocc.no/atc', 'H05AA02', 'teriparatide'),
  ('http://www.whocc.no/atc', 'H05AA04', 'abaloparatide'), ('http://www.whocc.no/atc', 'M05BX06', 'romosozumab');
CREATE OR REPLACE TEMP TABLE therapy_name(needle VARCHAR);
INSERT INTO therapy_name VALUES ('alendron'), ('risedron'), ('ibandron'), ('zoledron'), ('pamidron'), ('denosumab'), ('prolia'), ('xgeva'),
  ('teriparatide'), ('forteo'), ('abaloparatide'), ('tymlos'), ('romosozumab'), ('evenity');

-- Explicit columns: a field absent from every record (e.g. no dispenseRequest at all) must still exist.
CREATE OR REPLACE TEMP VIEW medication AS
SELECT 'MedicationRequest' AS kind, status, subject.reference AS ref, medicationCodeableConcept AS med,
       dispenseRequest.validityPeriod."end" AS period_end
FROM read_json('MedicationRequest.ndjson', format = 'newline_delimited', columns = {
  status: 'VARCHAR', subject: 'STRUCT(reference VARCHAR)',
  medicationCodeableConcept: 'STRUCT(coding STRUCT(system VARCHAR, code VARCHAR, display VARCHAR)[], text VARCHAR)',
  dispenseRequest: 'STRUCT(validityPeriod STRUCT("end" VARCHAR))'})
UNION ALL
SELECT 'MedicationStatement', status, subject.reference, medicationCodeableConcept, effectivePeriod."end"
FROM read_json('MedicationStatement.ndjson', format = 'newline_delimited', columns = {
  status: 'VARCHAR', subject: 'STRUCT(reference VARCHAR)',
  medicationCodeableConcept: 'STRUCT(coding STRUCT(system VARCHAR, code VARCHAR, display VARCHAR)[], text VARCHAR)',
  effectivePeriod: 'STRUCT("end" VARCHAR)'});

CREATE OR REPLACE TEMP VIEW bone_therapy AS
SELECT regexp_extract(ref, '(?:^|/)Patient/([^/]+)(?:/_history/[^/]+)?$', 1) AS patient_id,
  status = 'active' AND (period_end IS NULL OR
    (CASE WHEN period_end LIKE '%T%' THEN TRY_CAST(period_end AS TIMESTAMPTZ)
          ELSE TRY_CAST(period_end AS DATE) + INTERVAL 1 DAY END) > getvariable('as_of')) AS active
FROM medication m
WHERE status NOT IN ('entered-in-error', 'not-taken')
  AND (EXISTS (SELECT 1 FROM unnest(m.med.coding) AS u(c) JOIN therapy_code t ON t.system = c.system AND t.code = c.code)
    OR EXISTS (SELECT 1 FROM therapy_name n WHERE contains(
         lower(concat_ws(' ', m.med.text, array_to_string(list_transform(m.med.coding, c -> coalesce(c.display, '')), ' '))), n.needle)));

-- 5. The cohort: change the WHERE clause like the CLI flags (--category osteoporosis --untreated shown).
SELECT p.*, CASE WHEN bool_or(b.active) THEN 'active' WHEN count(b.patient_id) > 0 THEN 'past' ELSE 'none' END AS therapy
FROM per_patient p LEFT JOIN bone_therapy b USING (patient_id)
GROUP BY ALL
HAVING category = 'osteoporosis' AND therapy <> 'active'          -- --category osteoporosis --untreated
   -- AND trend_pct_per_year <= -3                                  -- --declining 3
ORDER BY vbmd_mg_cm3 NULLS LAST, trend_pct_per_year NULLS LAST, patient_id;
