/** Test fixture: the echo function, served with verify_jwt = false. */
export { handler } from "../echo/handler.ts";
