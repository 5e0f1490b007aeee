/** Where the library reports what it loads; the service passes its pino logger's info in, tests a spy. */
export type LogFn = (msg: string, fields?: Record<string, unknown>) => void;

export const silentLog: LogFn = () => {};
