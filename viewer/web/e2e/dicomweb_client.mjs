// The npm `dicomweb-client` library (the one OHIF and Slim build on), run in a page of the hub's
// own origin, against /dicom-web: STOW-RS of an object with a three-group person name, QIDO-RS
// with includefield, metadata, a frame and the instance. Settings: YILIAN_URL, YILIAN_TOKEN,
// YILIAN_FILE (a Part 10 CT, 16-bit). Prints what it saw as one JSON line; the C++ test checks it.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { env, run } from './lib.mjs';

const require = createRequire(import.meta.url);
const library = require.resolve('dicomweb-client/build/dicomweb-client.js');

await run(async ({ context }) => {
  const ctx = await context();
  const page = await ctx.newPage();
  // The library as if the hub served it (same origin: the page's Content Security Policy
  // allows only its own scripts).
  await page.route('**/test-only/dicomweb-client.js', (route) =>
    route.fulfill({ contentType: 'text/javascript', body: readFileSync(library, 'utf8') }),
  );
  await page.goto(env('YILIAN_URL'));
  await page.addScriptTag({ url: '/test-only/dicomweb-client.js' });
  const bytes = [...readFileSync(env('YILIAN_FILE'))];
  return page.evaluate(
    async ({ token, bytes }) => {
      const client = new window.DICOMwebClient.api.DICOMwebClient({
        url: `${location.origin}/dicom-web`,
        headers: { Authorization: `Bearer ${token}` },
      });
      const value = (item, tag) => item[tag]?.Value?.[0];
      let step = 'STOW-RS';
      try {
        const stored = await client.storeInstances({ datasets: [new Uint8Array(bytes).buffer] });
        // The library hands the store response over as text.
        const answer = typeof stored === 'string' ? JSON.parse(stored) : stored;
        const sop = value(value(answer, '00081199') ?? {}, '00081155');
        const retrieveUrl = value(value(answer, '00081199') ?? {}, '00081190');
        step = 'QIDO-RS studies';
        const studies = await client.searchForStudies({
          queryParams: { PatientID: 'TA-DWC', includefield: 'StationName' },
        });
        const study = studies[0];
        const studyUid = value(study, '0020000D');
        step = 'QIDO-RS series';
        const series = await client.searchForSeries({ studyInstanceUID: studyUid });
        const seriesUid = value(series[0], '0020000E');
        const ids = {
          studyInstanceUID: studyUid,
          seriesInstanceUID: seriesUid,
          sopInstanceUID: sop,
        };
        step = 'metadata';
        const metadata = await client.retrieveInstanceMetadata(ids);
        step = 'frames';
        const frames = await client.retrieveInstanceFrames({ ...ids, frameNumbers: [1] });
        // The same frame in compressed syntaxes the hub encodes losslessly on request.
        step = 'frames as image/jls';
        const jls = await client.retrieveInstanceFrames({
          ...ids,
          frameNumbers: [1],
          mediaTypes: [{ mediaType: 'image/jls' }],
        });
        step = 'frames as image/x-dicom-rle';
        const rle = await client.retrieveInstanceFrames({
          ...ids,
          frameNumbers: [1],
          mediaTypes: [{ mediaType: 'image/x-dicom-rle' }],
        });
        const head = (b, n) => [...new Uint8Array(b).slice(0, n)];
        step = 'instance';
        const instance = new Uint8Array(await client.retrieveInstance(ids));
        return {
          stored: sop,
          retrieveUrl,
          studies: studies.length,
          name: value(study, '00100010'),
          stationName: study['00081010'] ?? null,
          series: series.length,
          metadataSop: value(metadata[0], '00080018'),
          metadataName: value(metadata[0], '00100010'),
          rows: value(metadata[0], '00280010'),
          columns: value(metadata[0], '00280011'),
          frameBytes: frames[0].byteLength,
          jlsHead: head(jls[0], 4), // SOI, then the JPEG-LS start of frame (SOF55)
          rleSegments: new DataView(rle[0]).getUint32(0, true), // the RLE header's count
          instanceIsPart10: String.fromCharCode(...instance.slice(128, 132)) === 'DICM',
        };
      } catch (e) {
        throw new Error(
          `${step}: ${e.message} (HTTP ${e.request?.status} ${JSON.stringify(e.request?.response ?? null)})`,
        );
      }
    },
    { token: env('YILIAN_TOKEN'), bytes },
  );
});
