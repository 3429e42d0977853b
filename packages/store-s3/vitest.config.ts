import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    name: 'store-s3',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    env: {
      // The pinned SDK runs on Node 20 but warns, once per process, that later releases will not.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  },
})
