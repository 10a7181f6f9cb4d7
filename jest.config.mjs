const common = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^@umbra/(protocol|crypto|server|sdk)$': '<rootDir>/libs/$1/src/index.ts',
    '^@umbra/sdk/node$': '<rootDir>/libs/sdk/src/node.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.spec.json' }],
  },
  testEnvironment: 'node',
};

export default {
  testTimeout: 60000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/{libs,services}/*/src/**/*.spec.ts'], testPathIgnorePatterns: ['\\.fuzz\\.spec\\.ts$'] },
    // Coverage-guided fuzzing turns on V8 precise coverage for its whole process: its own jest run.
    { ...common, displayName: 'fuzz', testMatch: ['<rootDir>/{libs,services}/*/src/**/*.fuzz.spec.ts'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/{libs,services}/*/test/**/*.test.ts', '<rootDir>/test/**/*.test.ts'] },
    { ...common, displayName: 'heavy', testMatch: ['<rootDir>/test/**/*.heavy.ts', '<rootDir>/libs/*/src/**/*.heavy.ts'] },
  ],
};
