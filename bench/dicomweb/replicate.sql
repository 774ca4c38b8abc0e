-- Makes Yilian's PostgreSQL index hold `copies` times the studies it holds, for the QIDO
-- benchmark at scales that `yilian import` would take hours to load:
--   psql -v copies=10 -f bench/dicomweb/replicate.sql
-- Every patient, study and reading task is copied copies - 1 more times with new row ids, the
-- patient ID and the Study Instance UID suffixed ".k", and the study received k * 10 hours
-- earlier, so the copies are distinct rows with the generator's distribution of names, dates
-- and modalities. Series and instances are not copied (study searches do not read them).
-- Columns are read from the catalogue, so the script follows schema changes.
\set ON_ERROR_STOP on
SELECT set_config('bench.copies', :'copies', false);
CREATE FUNCTION pg_temp.cols(t text, skip text[]) RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position)
  FROM information_schema.columns
  WHERE table_schema = 'public' AND table_name = t AND column_name <> ALL (skip) $$;
DO $$
DECLARE
  n int := current_setting('bench.copies')::int;
  poff bigint := (SELECT coalesce(max(id), 0) FROM patients);
  soff bigint := (SELECT coalesce(max(id), 0) FROM studies);
  c text;
BEGIN
  IF n < 2 THEN RETURN; END IF;
  CREATE TEMP TABLE copy_k AS SELECT k FROM generate_series(1, n - 1) k;
  c := pg_temp.cols('patients', '{id,patient_id}');
  EXECUTE format('INSERT INTO patients(id, patient_id, %s) SELECT id + k * %s, '
                 'patient_id || ''.'' || k, %s FROM patients CROSS JOIN copy_k WHERE id <= %s',
                 c, poff, c, poff);
  c := pg_temp.cols('studies', '{id,study_uid,patient_pk,last_received_at}');
  EXECUTE format('INSERT INTO studies(id, study_uid, patient_pk, last_received_at, %s) '
                 'SELECT id + k * %s, study_uid || ''.'' || k, patient_pk + k * %s, '
                 'to_char((last_received_at::timestamptz - make_interval(hours => k * 10)) '
                 'AT TIME ZONE ''UTC'', ''YYYY-MM-DD"T"HH24:MI:SS.MS"Z"''), %s '
                 'FROM studies CROSS JOIN copy_k WHERE id <= %s', c, soff, poff, c, soff);
  c := pg_temp.cols('reading_tasks', '{id,study_pk}');
  EXECUTE format('INSERT INTO reading_tasks(study_pk, %s) SELECT study_pk + k * %s, %s '
                 'FROM reading_tasks CROSS JOIN copy_k WHERE study_pk <= %s', c, soff, c, soff);
  PERFORM setval(pg_get_serial_sequence('patients', 'id'), (SELECT max(id) FROM patients));
  PERFORM setval(pg_get_serial_sequence('studies', 'id'), (SELECT max(id) FROM studies));
END $$;
VACUUM ANALYZE patients;
VACUUM ANALYZE studies;
VACUUM ANALYZE reading_tasks;
