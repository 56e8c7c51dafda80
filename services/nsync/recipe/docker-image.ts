// A docker image reference as CC sends it (`user/image:tag`, no scheme) becomes the rootfs URI a
// cell pulls (ccbridge-2015 §4.6): `docker://<index>/<remote>#<tag>`. Images from Docker Hub
// have an empty index (or `docker.io` when CC spelled it out) and official images gain the
// `library/` prefix. No tag means no fragment: the cell applies `latest`, not nsync.
//
// Digests (`image@sha256:…`), which the 2015 table does not show, travel in the fragment as
// docker's own 2015 parser returned them in the tag's place: a fragment containing `:` is a
// digest, and a consumer pulls `<remote>@<fragment>` instead of `<remote>:<fragment>`. A tag
// next to a digest is dropped, since the digest alone names the image (Docker does the same).
import { dockerImageMissing, dockerImageWithScheme, invalidDockerImage } from './errors.js';

const DOCKER_HUB_INDEX = 'docker.io';
const OFFICIAL_NAMESPACE = 'library/';
// The OCI descriptor grammar: algorithm ":" encoded.
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[A-Za-z0-9=_-]+$/;

export function dockerRootfsUriFor(image: string): string {
  if (image === '') throw dockerImageMissing();
  if (image.includes('://')) throw dockerImageWithScheme(image);
  if (/[\s\p{Cc}#]/u.test(image)) throw invalidDockerImage(image, 'contains whitespace, control characters or #');

  const at = image.indexOf('@');
  const name = at < 0 ? image : image.slice(0, at);
  const digest = at < 0 ? undefined : image.slice(at + 1);
  if (digest !== undefined && !DIGEST.test(digest)) throw invalidDockerImage(image, 'malformed digest');

  const { index, remote: remoteWithTag } = splitIndex(name);
  const { remote, tag } = splitTag(remoteWithTag);
  if (remote === '' || remote.endsWith('/')) {
    throw invalidDockerImage(image, 'missing repository name');
  }
  const fragment = digest ?? tag;
  return `docker://${index}/${remote}${fragment ? `#${fragment}` : ''}`;
}

/**
 * The registry part of a name, when the name has one: the first path segment counts as a
 * registry only if it looks like a host (has `.` or `:`, or is `localhost`); otherwise the whole
 * name is a Docker Hub repository.
 */
function splitIndex(name: string): { index: string; remote: string } {
  const slash = name.indexOf('/');
  const first = slash < 0 ? name : name.slice(0, slash);
  const rest = slash < 0 ? '' : name.slice(slash + 1);
  const looksLikeHost = first.includes('.') || first.includes(':') || first === 'localhost';
  if (slash >= 0 && first === DOCKER_HUB_INDEX) return { index: DOCKER_HUB_INDEX, remote: officialName(rest) };
  if (slash < 0 || !looksLikeHost) return { index: '', remote: officialName(name) };
  return { index: first, remote: rest };
}

/** Docker Hub repositories without a namespace are the official `library/` ones. */
function officialName(remote: string): string {
  return remote.includes('/') ? remote : `${OFFICIAL_NAMESPACE}${remote}`;
}

/** The tag is what follows the last `:`, unless that text has a `/` (then the `:` was a port). */
function splitTag(remote: string): { remote: string; tag: string } {
  const colon = remote.lastIndexOf(':');
  if (colon < 0 || remote.slice(colon + 1).includes('/')) return { remote, tag: '' };
  return { remote: remote.slice(0, colon), tag: remote.slice(colon + 1) };
}
