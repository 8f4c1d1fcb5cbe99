"""The ``uapi`` emulator: Demandbase's production Data Export API, as far as public sources show it.

Run with ``demandbase-sandbox --dialect uapi`` or ``Sandbox(SandboxSettings(dialect="uapi"))``.
Routes (what ``demandbase-production-api.md`` documents; the name on the right is the endpoint's
key in ``http_errors`` and ``uapi_daily_limits``)::

    POST /auth/v1/token               token  -> 200 {accessToken, tokenType, expiresIn} | 400 | 401
    GET  /data/export/v1/fields       fields -> 200 [{name, dataType, label, description}]
    POST /data/export/v1/job          create -> 202 {jobStatus, createdAt, jobId, ...} | 400 | 429
    GET  /data/export/v1/job/{jobId}  status -> 200 job status | 404 (404-302)
    GET  /data/export/v1/jobs         list   -> 200 {pageNo, pageSize, totalCount, data}

- **Token**: a JSON body ``{"grantType": "client_credentials", "clientId", "clientSecret"}``
  [documented] or the official SDK's form body ``grant_type=...&client_id=...&client_secret=...``
  [observed]; either naming in either encoding. Bad credentials: 401 ``401-100`` [the token
  endpoint's error bodies are unknown; this is the export API's 401 body]. ``auth.py``.
- **Auth**: ``Authorization: Bearer <accessToken>`` (or the static ``token``) on every
  ``/data/export`` call; missing, wrong or expired: 401 ``401-100`` (``uapi_gateway_401``: the
  gateway body ``{"status": "Authentication Failed - Unauthorized."}``, which other uapi APIs
  document).
- **Budgets**: calls per UTC day and endpoint are counted (``usage.py``); past a limit of
  ``uapi_daily_limits`` (documented: create 60, status 300, list 1,200, fields 60) the answer is
  429 ``429-100`` "Rate limit exceeded." (the code the export spec uses for request limits). No
  ``Retry-After`` is sent (none is documented). ``uapi_rate_limited`` answers 429-100 to an
  endpoint's next k calls (a momentary limit), or to all of them (a spent daily limit).
- **One job at a time**: a create while ``uapi_max_running_jobs`` jobs are accepted or
  processing is 429 ``429-102``. The export quota (``quota_bytes``, ``quota_exhausted_after_jobs``)
  is 429 ``429-101``.
- **Jobs**: bodies are validated by ``job_requests.py``. Job ids are UUIDs [inferred]. Statuses
  ``accepted`` -> ``processing`` -> ``finished`` | ``failed`` (with ``message``); a key without a
  value is left out (the official SDK fails on nulls), or sent as null with ``uapi_nulls``.
  Timestamps are RFC 3339 with milliseconds, like ``2024-09-16T04:46:21.684Z``.
- **Results**: a finished job carries ``resultsUrl``, a freshly signed URL on the pre-signed
  download host (which refuses any Authorization header) at each status call; with
  ``uapi_split_files`` also ``resultsUrls`` (every file, in order; ``resultsUrl`` is the first).
  Files are CSV with a header row of the requested field names (``{Account}.id``...), gzip-
  compressed under the same name and Content-Type with ``uapi_gzip``. The URL format and the
  CSV dialect are not documented; these are the sandbox's (see ``files.py``).
- **List**: ``entityType`` (default ``All``), ``jobStatus`` (``All``, accepted, processing,
  finished, failed; any case), ``page`` (from 1), ``perPage`` (default 10, at most
  ``uapi_max_per_page``, served as ``pageSize``), ``sort`` (``descending`` by creation, default,
  or ``ascending``). Items carry jobId, jobName, jobStatus, entityType, createdAt, updatedAt.
- **Errors**: always ``{errorCode, errorMessage, diagnosticCode}`` (32 hex digits), errorCode
  ``<status>-<sequence>`` from Demandbase's registry; 404 ``404-301`` for unknown paths; 403
  with the registry's code and message for an entity type of ``uapi_denied_entity_types`` on
  the fields, create and list calls that name it (403-101: not in the Export Collection).

Not emulated: ``/v1/accountList/job``, ``/v1/personList/job``, ``/v1/references`` (404).

``server.py`` answers the routes, ``catalog.py`` is the catalogue of entity types and fields,
``settings.py`` holds this emulator's own knobs. The sandbox's controls (``/_sandbox/``) are the
shared ones of ``sandbox/api.py``, plus ``GET /_sandbox/usage`` (today's call counters: ``day``,
``counts``, ``limits``, ``resets_at``) and ``POST /_sandbox/usage`` (``{"counts": {...}}`` sets
today's counters). Today is the ``today`` knob's day, else the clock's.
"""
