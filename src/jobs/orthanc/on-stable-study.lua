-- vbmd push from Orthanc: when Orthanc considers a study complete (no new instance for StableAge seconds),
-- ask vbmd to analyse it, so no QIDO polling is needed and the result is in the chart seconds later.
--
--   POST {VBMD_URL}/api/studies/{StudyInstanceUID}/analyze     Authorization: Bearer {VBMD_API_TOKEN}
--
-- vbmd answers 202 at once (the analysis runs in its worker) and queues one job per study: a study pushed
-- twice (it becomes stable again when vbmd stores its DICOM results into it) or pushed and polled is
-- analysed once.
--
-- Orthanc configuration (JSON):   "LuaScripts": [ "/etc/orthanc/vbmd-on-stable-study.lua" ],
--                                 "StableAge": 2          (seconds; Orthanc's default is 60)
--                                 "HttpTimeout": 10       (Orthanc before 1.11.1, which lacks SetHttpTimeout)
-- StableAge must be longer than the longest pause within one study's sending: a study declared stable too
-- early is analysed as it was then (one job per study; the later push is the same job). 2 s suits a router
-- or modality that sends a study in one go; keep a longer one for senders that pause between series.
-- Environment of the Orthanc process:
--   VBMD_URL        vbmd's public base URL, e.g. https://vbmd.example.org (no trailing slash)
--   VBMD_API_TOKEN  one of vbmd's ANALYZE_API_TOKENS
--   VBMD_MODALITIES optional, comma-separated (default CT): only studies with a series of these are pushed
-- Over https Orthanc checks vbmd's certificate against its HttpsCACertificates setting.
-- A push vbmd does not accept is logged by Orthanc (no token or URL in the line); the QIDO poller still
-- finds the studies of watched orders.

local function wanted(studyId)
  local modalities = os.getenv('VBMD_MODALITIES') or 'CT'
  local series = ParseJson(RestApiGet('/studies/' .. studyId .. '/series'))
  for _, s in ipairs(series) do
    local m = s['MainDicomTags'] and s['MainDicomTags']['Modality']
    if m and string.find(',' .. modalities .. ',', ',' .. m .. ',', 1, true) then
      return true
    end
  end
  return false
end

function OnStableStudy(studyId, tags, metadata)
  local base = os.getenv('VBMD_URL')
  local token = os.getenv('VBMD_API_TOKEN')
  local uid = tags['StudyInstanceUID']
  if not base or not token or not uid then
    print('vbmd push: VBMD_URL or VBMD_API_TOKEN is not set, or the study has no StudyInstanceUID; not pushed')
    return
  end
  if not wanted(studyId) then
    return
  end
  -- Orthanc runs one Lua callback at a time, so a vbmd that hangs would hold up every other script: bound
  -- the call. SetHttpTimeout exists from Orthanc 1.11.1 on; older ones (Debian 12 ships 1.10.1) would stop
  -- the script here, so they keep their HttpTimeout setting (set it in the JSON, e.g. 10).
  if SetHttpTimeout then
    SetHttpTimeout(10)
  end
  local ok, answer = pcall(HttpPost, base .. '/api/studies/' .. uid .. '/analyze', '{}', {
    ['Authorization'] = 'Bearer ' .. token,
    ['Content-Type'] = 'application/json',
  })
  -- Orthanc 1.10 answers a refused call (401, 503) with an empty string rather than nil and logs the status
  -- itself (without URL or headers); vbmd's 202 always has a body.
  if not ok or answer == nil or answer == '' then
    local why = string.gsub(tostring(answer), 'Bearer [^ ]+', 'Bearer ...')
    print('vbmd push: vbmd did not accept study ' .. uid .. ' (' .. why .. ')')
  end
end
