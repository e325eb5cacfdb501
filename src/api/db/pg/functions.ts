// The metric-map SQL functions of spec §9.3 for PostgreSQL, with the semantics of ../functions.ts: a
// stored map is decoded like parseMetricMap (not JSON or not an object: empty; values that are not numbers
// are converted like JS Number(): booleans 1/0, numeric strings, '' → 0; anything else is dropped), merging
// with '{}' returns the other text unchanged, a key present in one map keeps its value, a zero total weight
// keeps the weighted sum. Arithmetic is float8 in the same order as the JS functions (numeric would round
// differently).
//
// The text they return is jsonb's: `{"a": 1.5, "bb": 2}` — keys by length then bytes, `": "` and `", "`
// separators, numbers in float8's shortest round-trip digits written without exponent. It parses to the
// same numbers as the JS functions' text; readers re-encode it with metricMapJson(parseMetricMap(text)).

/** The text of a flat map of plain JSON numbers (what both backends write): cast without a subtransaction. */
const NUM = '-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?';
const KEY = '"[^"\\\\[:cntrl:]]*"';
const FLAT_MAP_RE = `^\\{(${KEY}: ?${NUM}, ?)*${KEY}: ?${NUM}\\}$`;

// float8 holds |x| in [1e-300, 1e300] without loss of range; outside it the cast may raise instead of
// giving JS's Infinity (dropped) or 0.
const NUMBER_CASE = (v: string) =>
  `CASE WHEN jsonb_typeof(${v}) = 'number' AND (${v}::numeric = 0 OR abs(${v}::numeric) BETWEEN 1e-300 AND 1e300)
    THEN ${v}::float8 ELSE ceems_metric_number(${v}) END`;

/** A finite weight, else 0 (`num` of ../functions.ts). */
const WEIGHT = (w: string) =>
  `CASE WHEN ${w} IS NULL OR ${w} = 'NaN'::float8 OR abs(${w}) = 'Infinity'::float8 THEN 0 ELSE ${w} END`;

export const METRIC_MAP_FUNCTIONS = `
CREATE OR REPLACE FUNCTION ceems_metric_object(t text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
DECLARE j jsonb;
BEGIN
  IF t IS NULL OR t = '' THEN RETURN NULL; END IF;
  IF t ~ '${FLAT_MAP_RE}' THEN
    j := t::jsonb;
  ELSE
    BEGIN
      j := t::jsonb;
    EXCEPTION WHEN others THEN
      RETURN NULL;
    END;
  END IF;
  IF jsonb_typeof(j) <> 'object' THEN RETURN NULL; END IF;
  RETURN j;
END $fn$;

-- JS Number() of one map value; NULL when it is dropped (null, NaN, ±Infinity, objects, arrays).
CREATE OR REPLACE FUNCTION ceems_metric_number(v jsonb) RETURNS float8
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
DECLARE t text; n numeric;
BEGIN
  CASE jsonb_typeof(v)
  WHEN 'number' THEN
    n := v::numeric;
  WHEN 'boolean' THEN
    RETURN CASE WHEN v::boolean THEN 1 ELSE 0 END;
  WHEN 'string' THEN
    t := btrim(v #>> '{}', E' \\t\\n\\r\\f\\v\\u00a0\\ufeff\\u2028\\u2029');
    IF t = '' THEN RETURN 0; END IF;
    IF t !~ '^[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?$' THEN RETURN NULL; END IF;
    n := t::numeric;
  ELSE
    RETURN NULL;
  END CASE;
  BEGIN
    RETURN n::float8;
  EXCEPTION WHEN numeric_value_out_of_range OR program_limit_exceeded THEN
    -- JS: too small is 0, too large is Infinity (dropped)
    RETURN CASE WHEN abs(n) < 1 THEN 0 END;
  END;
END $fn$;

CREATE OR REPLACE FUNCTION ceems_metric_entries(t text) RETURNS TABLE (k text, v float8)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT key, n FROM (SELECT key, ${NUMBER_CASE('value')} AS n FROM jsonb_each(ceems_metric_object(t))) e
  WHERE n IS NOT NULL
$fn$;

CREATE OR REPLACE FUNCTION add_metric_map(a text, b text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT CASE
    WHEN b = '{}' AND a IS NOT NULL THEN a
    WHEN a = '{}' AND b IS NOT NULL THEN b
    ELSE (SELECT coalesce(jsonb_object_agg(coalesce(x.k, y.k),
            to_jsonb(CASE WHEN y.k IS NULL THEN x.v WHEN x.k IS NULL THEN 0 + y.v ELSE x.v + y.v END)), '{}')::text
          FROM ceems_metric_entries(a) x FULL JOIN ceems_metric_entries(b) y ON x.k = y.k)
  END
$fn$;

CREATE OR REPLACE FUNCTION avg_metric_map(a text, b text, wa float8, wb float8) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT CASE
    WHEN b = '{}' AND a IS NOT NULL THEN a
    WHEN a = '{}' AND b IS NOT NULL THEN b
    ELSE (SELECT coalesce(jsonb_object_agg(coalesce(x.k, y.k), to_jsonb(CASE
              WHEN y.k IS NULL THEN x.v
              WHEN x.k IS NULL THEN y.v
              WHEN w.a + w.b <> 0 THEN (x.v * w.a + y.v * w.b) / (w.a + w.b)
              ELSE x.v * w.a + y.v * w.b END)), '{}')::text
          FROM ceems_metric_entries(a) x FULL JOIN ceems_metric_entries(b) y ON x.k = y.k,
            (SELECT ${WEIGHT('wa')} AS a, ${WEIGHT('wb')} AS b) w)
  END
$fn$;

-- Running sums per key as a jsonb object of float8 values.
CREATE OR REPLACE FUNCTION ceems_sum_metric_map_step(state jsonb, m text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT state || coalesce((SELECT jsonb_object_agg(e.k, to_jsonb(coalesce((state->>e.k)::float8, 0) + e.v))
    FROM ceems_metric_entries(m) e), '{}')
$fn$;

CREATE OR REPLACE FUNCTION ceems_metric_map_text(state jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$ SELECT state::text $fn$;

CREATE OR REPLACE AGGREGATE sum_metric_map_agg(text) (
  SFUNC = ceems_sum_metric_map_step, STYPE = jsonb, FINALFUNC = ceems_metric_map_text, INITCOND = '{}'
);

-- Running weighted sums and weights per key, [sum, weight], divided at the end.
CREATE OR REPLACE FUNCTION ceems_avg_metric_map_step(state jsonb, m text, w float8) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT state || coalesce((SELECT jsonb_object_agg(e.k, jsonb_build_array(
      coalesce((state->e.k->>0)::float8, 0) + e.v * ww.w, coalesce((state->e.k->>1)::float8, 0) + ww.w))
    FROM ceems_metric_entries(m) e, (SELECT ${WEIGHT('w')} AS w) ww), '{}')
$fn$;

CREATE OR REPLACE FUNCTION ceems_avg_metric_map_final(state jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT coalesce(jsonb_object_agg(key, to_jsonb(CASE WHEN (value->>1)::float8 <> 0
      THEN (value->>0)::float8 / (value->>1)::float8 ELSE (value->>0)::float8 END)), '{}')::text
  FROM jsonb_each(state)
$fn$;

CREATE OR REPLACE AGGREGATE avg_metric_map_agg(text, float8) (
  SFUNC = ceems_avg_metric_map_step, STYPE = jsonb, FINALFUNC = ceems_avg_metric_map_final, INITCOND = '{}'
);
`;
