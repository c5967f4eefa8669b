// templates/oci: stored templates pushed to an OCI registry (fetchTemplate reads oci:// references back).
export { pushTemplate, type PushOptions, type PushResult } from '../manage/push.js';
export { parseOciReference, storeKeyOf, type OciReference } from '../oci/reference.js';
