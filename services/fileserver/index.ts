// The file server (lifecycle downloads, spec §8) and the cc-uploader (droplet and build
// artifacts uploads to CC, spec §9).
export { startFileServer, createStaticFileHandler, STATIC_ROUTE_PREFIX, type FileServer, type FileServerOptions } from './static-files.js';
export {
  startUploader,
  createUploadHandler,
  CC_BUILD_ARTIFACTS_UPLOAD_URI_KEY,
  CC_DROPLET_UPLOAD_URI_KEY,
  CC_TIMEOUT_KEY,
  type Uploader,
  type UploaderOptions,
  type UploaderTls,
} from './uploader.js';
export { multipartFraming, FORM_FIELD } from './cc-upload.js';
