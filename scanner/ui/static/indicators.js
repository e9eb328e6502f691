"use strict";
Scanner.ready(() => {});
