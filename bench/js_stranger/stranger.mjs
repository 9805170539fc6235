// A js-libp2p stranger process for bench.accept (`--strangers js`): dials a node over TCP +
// Noise + yamux again and again and, in "refused" mode, presents a certificate of another swarm
// on /mafalda/membership/1.0.0 and reads the node's refusal, then hangs up. This is how the issue's
// outsider probed the node: another implementation, which ends its side of a stream before reading
// and hangs up first (it costs 11-18 ms of CPU per refused exchange, twice bench.accept's own
// py-libp2p strangers).
//
// stdin: one JSON object {target, mode, seconds, identities: [{key, cert}]}; one dial loop per
// identity (a peer id holds one connection at a time), key = base64 of the raw ed25519 key
// (seed + public key, 64 bytes), cert = its certificate text.
// stdout: one JSON line {done, failed, elapsed, errors, cpu_s}, the same as the Python stranger's.
// Debian's Node.js 20 lacks Promise.withResolvers (Node 22), which js-libp2p 2.10's it-queue calls:
// define it before loading libp2p (hence the dynamic imports).
Promise.withResolvers ??= function withResolvers () {
  let resolve, reject
  const promise = new Promise((resolve_, reject_) => { resolve = resolve_; reject = reject_ })
  return { promise, resolve, reject }
}
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { privateKeyFromRaw } = await import('@libp2p/crypto/keys')
const { tcp } = await import('@libp2p/tcp')
const { multiaddr } = await import('@multiformats/multiaddr')
const { createLibp2p } = await import('libp2p')

const MEMBERSHIP = '/mafalda/membership/1.0.0'
const DIAL_TIMEOUT_MS = 10_000

function frame (message) {
  const body = Buffer.from(JSON.stringify(message))
  const head = Buffer.alloc(4)
  head.writeUInt32BE(body.length)
  return Buffer.concat([head, body])
}

async function readFrame (source) {
  let buffer = Buffer.alloc(0)
  for await (const chunk of source) {
    buffer = Buffer.concat([buffer, chunk.subarray()])
    if (buffer.length >= 4 && buffer.length >= 4 + buffer.readUInt32BE(0)) {
      return JSON.parse(buffer.subarray(4, 4 + buffer.readUInt32BE(0)).toString())
    }
  }
  throw new Error('stream closed before a frame')
}

async function main () {
  let input = ''
  for await (const chunk of process.stdin) input += chunk
  const { target, mode, seconds, identities } = JSON.parse(input)
  const address = multiaddr(target)
  const counts = { done: 0, failed: 0 }
  const errors = {}
  const started = Date.now()
  const end = started + seconds * 1000
  const cpuBefore = process.cpuUsage()

  async function loop ({ key, cert }) {
    const node = await createLibp2p({
      privateKey: privateKeyFromRaw(Buffer.from(key, 'base64')),
      addresses: { listen: [] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()]
    })
    while (Date.now() < end) {
      let connection
      try {
        connection = await node.dial(address, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
        if (mode === 'refused') {
          const stream = await connection.newStream(MEMBERSHIP, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
          await stream.sink([frame({ cert })])
          const answer = await readFrame(stream.source)
          if (answer.ok !== false) throw new Error(`not refused: ${JSON.stringify(answer)}`)
        }
        counts.done += 1
      } catch (error) {
        counts.failed += 1
        const reason = String(error?.message ?? error).slice(0, 60)
        errors[reason] = (errors[reason] ?? 0) + 1
      }
      if (connection !== undefined) await connection.close().catch(() => connection.abort(new Error('hang up')))
    }
    await node.stop()
  }

  await Promise.all(identities.map(loop))
  const cpu = process.cpuUsage(cpuBefore)
  process.stdout.write(JSON.stringify({
    ...counts, errors, elapsed: (Date.now() - started) / 1000, cpu_s: (cpu.user + cpu.system) / 1e6
  }) + '\n')
}

await main()
