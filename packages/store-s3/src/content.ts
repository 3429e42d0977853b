import type { Readable } from 'node:stream'
import type { Bucket } from './bucket.js'
import { type UploadTuning, uploadInParts } from './multipart.js'
import type { ContentAddress, ObjectNames } from './object-names.js'
import type { Staged } from './staging.js'

/** Whether any key's reference marker points at this content: one LIST of at most one name. */
export async function isContentReferenced(
  bucket: Bucket,
  names: ObjectNames,
  address: ContentAddress,
): Promise<boolean> {
  return (await bucket.first(names.refsPrefix(address))) !== undefined
}

/**
 * Makes sure the content object of `staged` exists with its bytes. One of the right size is kept
 * (its name is the hash of its bytes); a missing one, or one of the wrong size (damaged), is
 * written from the staged bytes or copied from the staged temp object.
 */
export async function placeContent(
  bucket: Bucket,
  names: ObjectNames,
  staged: Staged,
  tuning: UploadTuning,
): Promise<void> {
  const target = names.content(staged.address)
  if ((await bucket.size(target)) === staged.size) return
  if ('bytes' in staged) {
    if (staged.size > tuning.partSize) {
      await uploadInParts(bucket, target, [staged.bytes], tuning)
    } else await bucket.write(target, staged.bytes)
    return
  }
  if (!(await bucket.copy(staged.tmp, target))) {
    throw new Error(`the temp object ${staged.tmp} vanished before it was copied into place`)
  }
}

/**
 * Opens the content object of `address`, or `undefined` when there is none. While a remover has
 * parked the bytes (the short window of the remove protocol below), the parked copy is read.
 */
export async function openContent(
  bucket: Bucket,
  names: ObjectNames,
  address: ContentAddress,
): Promise<Readable | undefined> {
  const target = names.content(address)
  const body = await bucket.read(target)
  if (body) return body
  const parked = await bucket.first(names.trashPrefix(address))
  if (parked) {
    const copy = await bucket.read(parked)
    if (copy) return copy
  }
  // The remover may have put it back between the two looks.
  return bucket.read(target)
}

/** Whether the bytes of `address` are held (counting a copy a remover has parked for a moment). */
export async function contentExists(
  bucket: Bucket,
  names: ObjectNames,
  address: ContentAddress,
): Promise<boolean> {
  if ((await bucket.size(names.content(address))) !== undefined) return true
  return (await bucket.first(names.trashPrefix(address))) !== undefined
}

/*
 * Freeing shared content without losing a concurrent put (in this process or another), with no
 * lock and nothing S3 lacks (no rename, no conditional delete):
 *
 *   remover (its key object and marker deleted)   put (same bytes, another key)
 *   R1 any marker refs/<hex>/*? yes -> stop        P1 hash the bytes (held, or in a temp object)
 *   R2 copy content -> trash/<hex>/<uuid>          P2 write its marker refs/<hex>/<key>
 *   R3 delete content                              P3 content there with the right size?
 *   R4 any marker now?                                no -> write or copy it from P1
 *   R5 yes: copy trash -> content if missing       P4 write its key object keys/<key>
 *      then delete trash (either way)              P5 delete the temp object
 *
 * S3 lists are strongly consistent, so R4's list either sees P2's marker or ran before it. If it
 * sees it, R5 puts the bytes back. If not, P2 came after R4 and so after R3: P3 runs after the
 * delete, finds the content gone and writes it again. Either way the new key ends up with its
 * content. Readers that miss the content between R3 and R5 read the parked copy (`openContent`).
 * R1 means content that is already shared is never moved. The price: one server-side copy of the
 * bytes that are being freed.
 */
/** Frees the content of `address` if no key references it. Resolves whether it was freed. */
export async function freeContentIfUnreferenced(
  bucket: Bucket,
  names: ObjectNames,
  address: ContentAddress,
): Promise<boolean> {
  if (await isContentReferenced(bucket, names, address)) return false
  const target = names.content(address)
  const trash = names.trash(address)
  if (!(await bucket.copy(target, trash))) return false // already gone (another remover won)
  await bucket.delete(target)
  const referenced = await isContentReferenced(bucket, names, address).catch(() => true)
  if (referenced && (await bucket.size(target)) === undefined) {
    await bucket.copy(trash, target) // on failure the parked copy stays, and readers still find it
  }
  await bucket.delete(trash)
  return !referenced
}
